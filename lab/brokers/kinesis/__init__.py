"""Kinesis Data Streams: a stream per run, shards owned by consumers, checkpoints after
processing. Served locally by kinesalite; stands in for Amazon Kinesis Data Streams and
Yandex Data Streams, whose API it speaks: the external runtime takes either service's
https endpoint and runs the same code.

client.py       the boto3 client: endpoint, region, credentials, sequence numbers
streams.py      create, wait, list shards, put, read
clients.py      the producer (PutRecords) and the consumer (shard iterators)
checkpoints.py  the consumers' checkpoints and leases, a file per run (and subscriber)
replies.py      request-reply: a reply stream per requester
tail.py         how the probe counts the lag; dlq.py the dead-letter stream
adapter.py      provision, probe, teardown; settings.py what a run used
native.py       kinesalite run by Node.js; service.py its container
"""

from typing import TYPE_CHECKING

from lab.brokers.kinesis.options import KinesisOptions
from lab.brokers.plugin import BrokerPlugin
from lab.endpoints import Endpoint

if TYPE_CHECKING:
    from lab.brokers.contract import BrokerAdapter, RunSpec
    from lab.runtimes.containers import Service
    from lab.runtimes.native.spec import NativeBroker
    from lab.settings import Settings


class KinesisPlugin(BrokerPlugin):
    name = "kinesis"
    display = "Kinesis"
    order = 70
    patterns = ("work-queue", "pub-sub", "fire-and-forget", "request-reply")
    request_reply = (
        "a one-shard reply stream per requester (PutRecords by the responder, the correlation"
        " id as partition key), read from TRIM_HORIZON by GetRecords every read_interval:"
        " Kinesis has no server-side wait, so that cadence sets the round trip's floor"
    )
    fire_and_forget = "PutRecords, its answer ignored: the Kinesis API has no one-way send"
    polling = {
        "long": (
            "GetRecords per shard at the client's own read cadence (Kinesis has no server-side "
            "wait; SubscribeToShard is not in kinesalite)"
        ),
        "short": "GetRecords per shard once per interval",
    }
    ports = {"kinesis": 567}
    # A service's https endpoint cannot be reached through a local TCP proxy: its
    # certificate names the service's host, not 127.0.0.1.
    proxy_external = False
    schemes = ("kinesis", "kinesis+https")
    default_port = 443
    url_example = (
        "kinesis+https://kinesis.REGION.amazonaws.com, "
        "kinesis+https://yds.serverless.yandexcloud.net/REGION/FOLDER/DATABASE "
        "(kinesalite: kinesis://HOST:4567)"
    )
    password = False  # kinesalite checks no credentials; the services take the AWS chain's
    options = KinesisOptions
    retention_limits = ("max_age",)  # RetentionPeriodHours: Kinesis keeps records by age only
    preload = ("boto3", "botocore.session")
    default = False
    assigns_partitions = True
    emulates = "Amazon Kinesis Data Streams and Yandex Data Streams"
    container_start_timeout = 90.0  # the first start installs kinesalite from npm

    def endpoint(self, host: str, port: int, secret: str | None) -> Endpoint:
        return Endpoint(self.name, "kinesis", host, port)

    def check_url(self, ep: Endpoint) -> str | None:
        if ep.username or ep.password:
            return (
                "carries credentials: the lab takes them where every AWS SDK does"
                " (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials)"
            )
        if ep.scheme == "kinesis" and ep.port == 443:
            return (
                "is plain http on port 443: for https write kinesis+https://HOST,"
                " for kinesalite give its port, e.g. kinesis://HOST:4567"
            )
        if ep.path and ep.path.strip("/").count("/") != 2:
            return (
                "has a path that is not a Yandex Data Streams database:"
                " /REGION/FOLDER/DATABASE, e.g. /ru-central1/b1g.../etn..."
            )
        return None

    def probe(self, ep: Endpoint, timeout: float) -> str | None:
        from lab.brokers.kinesis.client import make_client

        client = make_client(ep, read_timeout=timeout, connect_timeout=timeout)
        try:
            client.list_streams(Limit=1)
        finally:
            client.close()
        return None  # the Kinesis API names no server version

    def adapter(self, spec: "RunSpec") -> "BrokerAdapter":
        from lab.brokers.kinesis.adapter import KinesisAdapter

        return KinesisAdapter(spec)

    def native(self, settings: "Settings") -> "NativeBroker":
        from lab.brokers.kinesis.native import KinesaliteBroker

        return KinesaliteBroker(settings, self)

    def service(self, settings: "Settings") -> "Service":
        from lab.brokers.kinesis.service import single_node

        return single_node(settings)


PLUGIN = KinesisPlugin()
