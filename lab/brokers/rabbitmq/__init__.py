"""RabbitMQ: a durable work queue per run, publisher confirms, manual consumer acks;
pub-sub through a fanout exchange and a queue per subscriber.

amqp.py      one pika connection and channel whose I/O runs only when pumped
clients.py   the producer (a window of confirms) and the consumer
replies.py   request-reply by direct reply-to
adapter.py   provision, probe, teardown, dead letters
dlq.py       retention (x-max-length and friends), dead letters, retries
settings.py  the settings read back from the node (rabbitmqctl list_queues)
native.py    its own Erlang node, cookie and epmd; service.py its containers
"""

from typing import TYPE_CHECKING

from lab.brokers.plugin import BrokerPlugin, Clusters
from lab.brokers.rabbitmq.options import USER, RabbitMQOptions
from lab.endpoints import Endpoint

if TYPE_CHECKING:
    from lab.brokers.contract import BrokerAdapter, RunSpec
    from lab.runtimes.containers import Service
    from lab.runtimes.native.spec import NativeBroker
    from lab.settings import Settings


class RabbitMQPlugin(BrokerPlugin):
    name = "rabbitmq"
    display = "RabbitMQ"
    order = 20
    patterns = ("work-queue", "pub-sub", "fire-and-forget", "request-reply")
    request_reply = (
        "direct reply-to (amq.rabbitmq.reply-to) consumed on each requester's publishing"
        " channel; no reply queue"
    )
    fire_and_forget = "transient messages (delivery mode 1) without publisher confirms"
    polling = {
        "long": (
            "a push consumer (basic.consume): the broker sends as messages arrive, up to prefetch"
        ),
        "short": "basic.get, one round trip per message, until the queue answers get-empty",
    }
    ports = {"rabbitmq": 672, "rabbitmq-dist": 673, "rabbitmq-epmd": 369}
    schemes = ("amqp",)
    default_port = 5672
    url_example = "amqp://USER:PASSWORD@HOST:5672/VHOST"
    options = RabbitMQOptions
    preload = ("pika",)
    container_start_timeout = 90.0

    def endpoint(self, host: str, port: int, secret: str | None) -> Endpoint:
        return Endpoint(self.name, "amqp", host, port, username=USER, password=secret)

    def probe(self, ep: Endpoint, timeout: float) -> str | None:
        import pika

        from lab.brokers.rabbitmq.amqp import connection_parameters

        conn = pika.BlockingConnection(connection_parameters(ep, timeout))
        try:
            conn.channel().close()
            version = conn._impl.server_properties.get("version")
            return version.decode() if isinstance(version, bytes) else version
        finally:
            conn.close()

    def adapter(self, spec: "RunSpec") -> "BrokerAdapter":
        from lab.brokers.rabbitmq.adapter import RabbitMQAdapter

        return RabbitMQAdapter(spec)

    def native(self, settings: "Settings") -> "NativeBroker":
        from lab.brokers.rabbitmq.native import RabbitMQBroker

        return RabbitMQBroker(settings, self)

    def service(self, settings: "Settings") -> "Service":
        from lab.brokers.rabbitmq.service import single_node

        return single_node(settings)

    def clusters(self, settings: "Settings") -> Clusters:
        from lab.brokers.rabbitmq.service import three_nodes

        what = "Three RabbitMQ nodes in one cluster; queues are quorum queues by default."
        return {"rabbitmq-cluster.yml": (what, three_nodes(settings))}


PLUGIN = RabbitMQPlugin()
