"""Apache Kafka: a topic per run, one consumer group, offsets committed after processing.

adapter.py       provision, probe, teardown, dead letters (confluent-kafka admin)
confluent.py     the default clients (librdkafka); kafka_python.py the other ones
common.py        what both clients share: settings, OffsetTracker
dlq.py           retention, retries by re-publishing, the <topic>.dlq topic
native.py        KRaft from the jars setup assembled; service.py its containers
"""

from typing import TYPE_CHECKING

from lab.brokers.kafka.options import KafkaOptions
from lab.brokers.plugin import BrokerPlugin, Clusters
from lab.endpoints import Endpoint

if TYPE_CHECKING:
    from lab.brokers.contract import BrokerAdapter, RunSpec
    from lab.runtimes.containers import Service
    from lab.runtimes.native.spec import NativeBroker
    from lab.settings import Settings


class KafkaPlugin(BrokerPlugin):
    name = "kafka"
    display = "Kafka"
    order = 10
    patterns = ("work-queue", "pub-sub", "fire-and-forget", "request-reply")
    request_reply = "a reply topic per requester, read by assign() (replies by confluent-kafka)"
    fire_and_forget = "acks=0: the producer does not wait for the broker at all"
    polling = {
        "long": (
            "the consumer's fetches wait on the broker (fetch.wait.max.ms=500, librdkafka fetches"
            " in the background)"
        ),
        "short": (
            "the application asks its client once per interval; the client still fetches in the "
            "background, so only latency grows"
        ),
    }
    ports = {"kafka": 92, "kafka-controller": 93, "kafka-proxied": 94}
    # A listener that advertises the chaos proxy's port: metadata sends every client
    # connection back through the proxy.
    proxy_upstream = "kafka-proxied"
    # Clients of someone else's cluster go wherever its metadata sends them, past any
    # proxy in front of the bootstrap address.
    proxy_external = False
    schemes = ("kafka",)
    default_port = 9092
    url_example = "kafka://HOST:9092"
    password = False
    options = KafkaOptions
    preload = ("confluent_kafka",)
    container_start_timeout = 90.0

    def endpoint(self, host: str, port: int, secret: str | None) -> Endpoint:
        return Endpoint(self.name, "kafka", host, port)

    def check_url(self, ep: Endpoint) -> str | None:
        if ep.path or ep.username or ep.password:
            return "has a path or credentials: the lab's Kafka clients connect in plaintext"
        return None

    def probe(self, ep: Endpoint, timeout: float) -> str | None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {
                "bootstrap.servers": f"{ep.host}:{ep.port}",
                "socket.timeout.ms": int(timeout * 1000),
                "log_level": 0,
            }
        )
        # Metadata with at least one broker means the KRaft controller elected itself and
        # the broker registered; an open port alone is not that.
        metadata = admin.list_topics(timeout=timeout)
        if not metadata.brokers:
            raise ConnectionError("kafka answered without any registered broker")
        return None

    def adapter(self, spec: "RunSpec") -> "BrokerAdapter":
        from lab.brokers.kafka.adapter import KafkaAdapter

        return KafkaAdapter(spec)

    def native(self, settings: "Settings") -> "NativeBroker":
        from lab.brokers.kafka.native import KafkaBroker

        return KafkaBroker(settings, self)

    def service(self, settings: "Settings") -> "Service":
        from lab.brokers.kafka.service import single_node

        return single_node(settings)

    def clusters(self, settings: "Settings") -> Clusters:
        from lab.brokers.kafka.service import three_nodes

        what = "Three Kafka nodes (KRaft, each broker and controller), replication factor 3."
        return {"kafka-cluster.yml": (what, three_nodes(settings))}


PLUGIN = KafkaPlugin()
