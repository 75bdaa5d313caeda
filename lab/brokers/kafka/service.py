"""Kafka as containers: the single node the docker runtime runs, and a three-node cluster
for compose/ (run it with `docker compose`, reach it with the external runtime)."""

import base64
import uuid
from collections.abc import Mapping

from lab.brokers.kafka import config as kafka_config
from lab.brokers.kafka.native import pinned_version
from lab.runtimes.containers import BROKER_LABEL, CLUSTER_NODES, HealthCheck, Port, Service
from lab.settings import Settings

# The exact release the native runtime assembles, so both runtimes run the same broker.
IMAGE = ("apache/kafka", pinned_version())
# The fixed KRaft cluster id of the lab's Kafka containers: 16 bytes, URL-safe base64.
CLUSTER_ID = (
    base64.urlsafe_b64encode(uuid.uuid5(uuid.NAMESPACE_URL, "broker-lab/kafka").bytes)
    .decode()
    .rstrip("=")
)
DATA = "/tmp/kraft-combined-logs"  # the image's own data dir, writable by its user
HEAP = "-Xms1g -Xmx1g"  # the native runtime's heap; the image's GC settings are its own
CLUSTER_PORT_STEP = 100  # node N publishes its client port at the lab's port + 100 * N


def image_env(config: Mapping[str, str]) -> dict[str, str]:
    """Kafka properties as the apache/kafka image's variables: `.` -> `_`, `_` -> `__`,
    `-` -> `___`, upper case, prefixed with KAFKA_."""
    env = {}
    for key, value in config.items():
        name = key.replace("_", "__").replace("-", "___").replace(".", "_").upper()
        env[f"KAFKA_{name}"] = value
    return env


def healthcheck(host: str, port: int) -> HealthCheck:
    # A real API call, as in the lab's own readiness probe; the tool gets a small heap of
    # its own rather than inheriting the broker's KAFKA_HEAP_OPTS.
    return HealthCheck(
        (
            "CMD-SHELL",
            "KAFKA_HEAP_OPTS=-Xmx64m /opt/kafka/bin/kafka-broker-api-versions.sh "
            f"--bootstrap-server {host}:{port} > /dev/null 2>&1",
        ),
        interval=15,
        timeout=10,
        retries=5,
        start_period=60,
    )


def single_node(settings: Settings) -> Service:
    """The native runtime's listener layout. Inside the container Kafka listens on the
    lab's port numbers, published 1:1, so that the addresses it advertises
    (127.0.0.1:<lab port>) are right on the host and inside the container alike."""
    plain, proxied = settings.port("kafka"), settings.port("kafka-proxied")
    config = {
        **kafka_config.single_node(settings, "0.0.0.0"),
        **kafka_config.common(replication=1, log_dir=DATA),
    }
    return Service(
        broker="kafka",
        name="kafka",
        image=IMAGE[0],
        tag=IMAGE[1],
        ports=(Port(plain, plain), Port(proxied, proxied)),
        environment={"CLUSTER_ID": CLUSTER_ID, "KAFKA_HEAP_OPTS": HEAP, **image_env(config)},
        healthcheck=healthcheck("127.0.0.1", plain),
        labels={BROKER_LABEL: "kafka"},
    )


def three_nodes(settings: Settings) -> tuple[Service, ...]:
    """Three KRaft nodes, each broker and controller; topics replicate three ways.

    Nodes talk to each other on INTERNAL (their compose hostnames); clients on the host
    use EXTERNAL, published 1:1 on 127.0.0.1 like the single node's listener.
    """
    voters = ",".join(f"{i}@kafka-{i}:19093" for i in range(1, CLUSTER_NODES + 1))
    nodes = []
    for i in range(1, CLUSTER_NODES + 1):
        port = settings.port("kafka") + CLUSTER_PORT_STEP * i
        config = {
            "process.roles": "broker,controller",
            "node.id": str(i),
            "controller.quorum.voters": voters,
            "listeners": (
                f"INTERNAL://0.0.0.0:19092,CONTROLLER://0.0.0.0:19093,EXTERNAL://0.0.0.0:{port}"
            ),
            "advertised.listeners": f"INTERNAL://kafka-{i}:19092,EXTERNAL://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "INTERNAL",
            "listener.security.protocol.map": (
                "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,EXTERNAL:PLAINTEXT"
            ),
            **kafka_config.common(replication=CLUSTER_NODES, log_dir=DATA),
        }
        nodes.append(
            Service(
                broker="kafka",
                name=f"kafka-{i}",
                image=IMAGE[0],
                tag=IMAGE[1],
                ports=(Port(port, port),),
                environment={
                    "CLUSTER_ID": CLUSTER_ID,
                    "KAFKA_HEAP_OPTS": HEAP,
                    **image_env(config),
                },
                # The internal listener: its metadata names addresses every node can reach.
                healthcheck=healthcheck(f"kafka-{i}", 19092),
                labels={BROKER_LABEL: "kafka"},
            )
        )
    return tuple(nodes)
