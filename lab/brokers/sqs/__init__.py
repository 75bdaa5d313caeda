"""SQS: a queue per run with a dead-letter queue, served locally by ElasticMQ.

Pub-sub is a queue per subscriber filled by the producer itself (the lab runs no SNS);
request-reply a reply queue per requester.

Stands in for Amazon SQS and Yandex Message Queue, whose API ElasticMQ speaks; the
external runtime takes either service's https endpoint and runs the same code.

client.py    the boto3 client: endpoint, region, credentials from the AWS chain
queues.py    names, attributes, message bodies
clients.py   the producer (SendMessageBatch) and the consumer (ReceiveMessage)
replies.py   request-reply: the responders' replies and the requesters' reply queues
adapter.py   provision, probe, retention, teardown; settings.py what the run used
dlq.py       the dead-letter queue: the redrive policy, browsing, redrive
native.py    ElasticMQ from the jars setup assembled; service.py its container
"""

from typing import TYPE_CHECKING

from lab.brokers.plugin import BrokerPlugin
from lab.brokers.sqs.options import SqsOptions
from lab.endpoints import Endpoint

if TYPE_CHECKING:
    from lab.brokers.contract import BrokerAdapter, RunSpec
    from lab.runtimes.containers import Service
    from lab.runtimes.native.spec import NativeBroker
    from lab.settings import Settings


class SqsPlugin(BrokerPlugin):
    name = "sqs"
    display = "SQS"
    order = 50
    patterns = ("work-queue", "pub-sub", "fire-and-forget", "request-reply")
    request_reply = (
        "a reply queue per requester: the responder's SendMessageBatch, the request's header"
        " as the correlation id; the requester long-polls it (WaitTimeSeconds) and deletes"
    )
    fire_and_forget = "SendMessageBatch, its answer ignored: the SQS API has no one-way send"
    polling = {
        "long": "ReceiveMessage with WaitTimeSeconds (long polling)",
        "short": "ReceiveMessage with WaitTimeSeconds=0 (short polling)",
    }
    ports = {"sqs": 324}
    # A real service's https endpoint cannot be reached through a local TCP proxy: the
    # certificate names the service's host, not 127.0.0.1.
    proxy_external = False
    schemes = ("sqs", "sqs+https")
    default_port = 443
    url_example = "sqs+https://sqs.REGION.amazonaws.com (ElasticMQ: sqs://HOST:9324)"
    password = False  # ElasticMQ checks no credentials; the services take the AWS chain's
    options = SqsOptions
    retention_limits = ("max_age",)  # MessageRetentionPeriod; SQS has no count or size limit
    preload = ("boto3", "botocore.session")
    default = False
    emulates = "Amazon SQS and Yandex Message Queue"
    container_start_timeout = 60.0

    def endpoint(self, host: str, port: int, secret: str | None) -> Endpoint:
        return Endpoint(self.name, "sqs", host, port)

    def check_url(self, ep: Endpoint) -> str | None:
        if ep.username or ep.password:
            return (
                "carries credentials: the lab takes them where every AWS SDK does"
                " (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials)"
            )
        if ep.path:
            return "has a path: give the service's endpoint only (the lab makes its own queues)"
        if ep.scheme == "sqs" and ep.port == 443:
            return (
                "is plain http on port 443: for https write sqs+https://HOST,"
                " for ElasticMQ give its port, e.g. sqs://HOST:9324"
            )
        return None

    def probe(self, ep: Endpoint, timeout: float) -> str | None:
        from lab.brokers.sqs.client import make_client

        client = make_client(ep, read_timeout=timeout, connect_timeout=timeout)
        try:
            client.list_queues(MaxResults=1)
        finally:
            client.close()
        return None  # the SQS API names no server version

    def adapter(self, spec: "RunSpec") -> "BrokerAdapter":
        from lab.brokers.sqs.adapter import SqsAdapter

        return SqsAdapter(spec)

    def native(self, settings: "Settings") -> "NativeBroker":
        from lab.brokers.sqs.native import ElasticMQBroker

        return ElasticMQBroker(settings, self)

    def service(self, settings: "Settings") -> "Service":
        from lab.brokers.sqs.service import single_node

        return single_node(settings)


PLUGIN = SqsPlugin()
