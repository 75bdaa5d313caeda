"""One boto3 SQS client per endpoint: the same code for ElasticMQ, Amazon SQS and Yandex
Message Queue; only the endpoint URL and the credentials differ.

Credentials come from boto3's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
AWS_PROFILE and ~/.aws/credentials, ...), never from the lab's URL, results or logs.
Where the chain finds none, requests go unsigned: ElasticMQ does not check signatures,
and a real service answers with an error that says what is missing. The region comes
from AWS_REGION / AWS_DEFAULT_REGION / ~/.aws/config, else from an Amazon host name.
"""

import os
import re

import boto3
import botocore
from botocore import UNSIGNED
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lab.brokers.contract import BrokerError
from lab.endpoints import Endpoint

HTTPS = "sqs+https"
DEFAULT_REGION = "us-east-1"  # signs requests to hosts that name none (ElasticMQ, YMQ)
# Codes of a queue that does not exist, in the query and the JSON protocols.
NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
_AMAZON_HOST = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com")
_YANDEX_HOST = "message-queue.api.cloud.yandex.net"
_YANDEX_REGION = "ru-central1"


def endpoint_url(ep: Endpoint) -> str:
    scheme = "https" if ep.scheme == HTTPS else "http"
    default = 443 if scheme == "https" else 80
    port = "" if ep.port == default else f":{ep.port}"
    return f"{scheme}://{ep.host}{port}"


def region(ep: Endpoint, session: boto3.Session) -> str:
    # AWS_REGION is every other SDK's variable; boto3 itself reads AWS_DEFAULT_REGION.
    given = os.environ.get("AWS_REGION") or session.region_name
    if given:
        return given
    match = _AMAZON_HOST.fullmatch(ep.host)
    if match:
        return match.group(1)
    return _YANDEX_REGION if ep.host == _YANDEX_HOST else DEFAULT_REGION


def make_client(
    ep: Endpoint, read_timeout: float = 10.0, connect_timeout: float = 2.0, connections: int = 2
) -> BaseClient:
    """A client that fails fast: botocore's retries would hide a broker that is down,
    and the lab's workers decide themselves when to try again."""
    session = boto3.Session()
    signed = session.get_credentials() is not None
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": 1},
        max_pool_connections=connections,
        **({} if signed else {"signature_version": UNSIGNED}),
    )
    return session.client(
        "sqs", endpoint_url=endpoint_url(ep), region_name=region(ep, session), config=config
    )


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_missing_queue(exc: BaseException) -> bool:
    return error_code(exc) in NO_QUEUE


def broker_error(what: str, exc: BaseException) -> BrokerError:
    """One line: the service's code and message, or the connection failure."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        text = f"{err.get('Code', '?')}: {err.get('Message', '')}".rstrip(": ")
    else:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return BrokerError(f"sqs: {what} failed: {text}")


ERRORS = (BotoCoreError, ClientError)


def version() -> str:
    return f"boto3 {boto3.__version__} (botocore {botocore.__version__})"
