"""One boto3 client for every Kinesis endpoint: the local server and the real services.

Only the endpoint and the credentials differ. `kinesis://HOST:PORT` is plain http (the
local server); `kinesis+https://HOST` is a service: Amazon Kinesis Data Streams
(kinesis.REGION.amazonaws.com) or Yandex Data Streams (yds.serverless.yandexcloud.net,
whose stream names start with the database path, given as the URL's path). Credentials
for a service come from the AWS SDK's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
AWS_PROFILE, ~/.aws/credentials, ...); the emulator checks no signature and takes the
standard variables or placeholder keys. The lab never writes credentials anywhere.
"""

import os
import re
import threading

import boto3
import botocore.exceptions
from botocore.client import BaseClient
from botocore.config import Config

from lab.brokers.contract import BrokerError
from lab.endpoints import Endpoint

TLS_SCHEME = "kinesis+https"
YDS_HOST = "yds.serverless.yandexcloud.net"
YDS_REGION = "ru-central1"
DEFAULT_REGION = "us-east-1"
_AWS_HOST = re.compile(r"kinesis(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
# The emulator's keys when the SDK's chain has none: it checks no signature.
PLACEHOLDER_KEYS = ("broker-lab", "broker-lab")

Client = BaseClient  # boto3's Kinesis client; its class is made at run time

# A session loads Kinesis's service model once; every client of the process shares it.
# Sessions are not thread-safe to make clients from (the probe runs on a thread).
_sessions: list[boto3.session.Session] = []
_lock = threading.Lock()


def _shared_session() -> boto3.session.Session:
    if not _sessions:
        _sessions.append(boto3.session.Session())
    return _sessions[0]


def endpoint_url(ep: Endpoint) -> str:
    if ep.scheme == TLS_SCHEME:
        return f"https://{ep.host}" + ("" if ep.port == 443 else f":{ep.port}")
    return f"http://{ep.host}:{ep.port}"


def region(ep: Endpoint, configured: str | None) -> str:
    """The signing region: the service's host names it; else the SDK's setting."""
    found = _AWS_HOST.fullmatch(ep.host)
    if found:
        return found.group(1)
    if ep.host == YDS_HOST:
        return YDS_REGION
    return configured or DEFAULT_REGION


def stream_name(ep: Endpoint, name: str) -> str:
    """Yandex Data Streams names a stream by its database path: /REGION/FOLDER/DATABASE/NAME."""
    return f"/{ep.path.strip('/')}/{name}" if ep.path else name


def make_client(ep: Endpoint, read_timeout: float = 5.0, connect_timeout: float = 2.0) -> Client:
    """A Kinesis client that never retries by itself: the lab's workers decide."""
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tcp_keepalive=True,
    )
    with _lock:
        session = _shared_session()
        return session.client(
            "kinesis",
            endpoint_url=endpoint_url(ep),
            region_name=region(ep, session.region_name),
            config=config,
            **_credentials(ep, session),
        )


def _credentials(ep: Endpoint, session: boto3.session.Session) -> dict[str, str]:
    """A service: whatever the SDK's chain finds (it may ask an instance's metadata
    service, as on EC2). The emulator: the standard variables if set, else placeholder
    keys; never the chain, which would reach for a metadata service off this host."""
    if ep.scheme != TLS_SCHEME:
        env = os.environ
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if not (key and secret):
            key, secret = PLACEHOLDER_KEYS
        return {"aws_access_key_id": key, "aws_secret_access_key": secret}
    if session.get_credentials() is None:
        raise BrokerError(
            "kinesis: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,"
            " or a profile in ~/.aws/credentials (AWS_PROFILE)"
        )
    return {}


def error_text(exc: Exception) -> str:
    """One line for a failed call: the service's error code and message, or the network's."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def error_code(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


# Every failure of a call: the service said no, or the network or the server went away.
ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


def broker_error(what: str, exc: Exception) -> BrokerError:
    return BrokerError(f"kinesis: {what}: {error_text(exc)}")


# --- positions ------------------------------------------------------------------------
# Ack.position and the retention floor are int64s; a Kinesis sequence number is a decimal
# of up to 128 bits and more, increasing within a shard. kinesalite writes them in the
# service's "version 2" layout, 47 hex digits: '2', the shard's creation time, a digit of
# the shard index, a 64-bit sequence index, a byte, the record's time in seconds, the
# shard index, '2'. Within one shard only the sequence index and what follows it change,
# so the sequence index (below 2^63, kinesalite refuses more) orders the shard's records
# exactly. It counts per group of five shards, so it has gaps: it is a position, never a
# count. A number that already fits (a server that numbers records by offset) is its own
# position; any other is not known (-1), and such messages are not matched to a floor.
INT64_LIMIT = 1 << 63


def position(sequence: str) -> int:
    number = int(sequence)
    if number < INT64_LIMIT:
        return number
    digits = f"{number:x}"
    if len(digits) == 47 and digits[0] == "2" and digits[-1] == "2":
        index = int(digits[11:27], 16)
        if index < INT64_LIMIT:
            return index
    return -1


def order_key(sequence: str) -> int:
    """What sorts a shard's records: the position where it is known, the number itself
    otherwise (a Python int of any size)."""
    found = position(sequence)
    return found if found >= 0 else int(sequence)
