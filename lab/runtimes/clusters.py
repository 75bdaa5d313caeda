"""Three-node clusters for the compose files: fault drills that need replication.

Made from the single-node services (image, settings, health checks), so they drift no
more than those do. The lab does not start them itself: run them with `docker compose`
and point the lab at them with the external runtime.
"""

from lab.runtimes.services import (
    Port,
    Secret,
    Service,
    kafka,
    kafka_common,
    kafka_env,
    kafka_healthcheck,
    rabbitmq,
)
from lab.settings import Settings

CLUSTER_NODES = 3
CLUSTER_PORT_STEP = 100  # node N publishes its client port at the lab's port + 100 * N


def kafka_cluster(settings: Settings) -> tuple[Service, ...]:
    """Three KRaft nodes, each broker and controller; topics replicate three ways.

    Nodes talk to each other on INTERNAL (their compose hostnames); clients on the host
    use EXTERNAL, published 1:1 on 127.0.0.1 like the single node's listener.
    """
    single = kafka(settings)
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
            **kafka_common(replication=CLUSTER_NODES),
        }
        env = {k: v for k, v in single.environment.items() if not k.startswith("KAFKA_")}
        env["KAFKA_HEAP_OPTS"] = single.environment["KAFKA_HEAP_OPTS"]
        nodes.append(
            Service(
                broker="kafka",
                name=f"kafka-{i}",
                image=single.image,
                tag=single.tag,
                ports=(Port(port, port),),
                environment={**env, **kafka_env(config)},
                # The internal listener: its metadata names addresses every node can reach.
                healthcheck=kafka_healthcheck(f"kafka-{i}", 19092),
                stop_timeout=single.stop_timeout,
                labels=single.labels,
            )
        )
    return tuple(nodes)


def rabbitmq_cluster(settings: Settings) -> tuple[Service, ...]:
    """Three RabbitMQ nodes that find each other through a fixed list and create quorum
    queues by default (a queue declared without x-queue-type is replicated too)."""
    single = rabbitmq(settings)
    names = [f"rabbitmq-{i}" for i in range(1, CLUSTER_NODES + 1)]
    conf = "\n".join(
        [
            "cluster_formation.peer_discovery_backend = classic_config",
            *(
                f"cluster_formation.classic_config.nodes.{i} = rabbit@{n}"
                for i, n in enumerate(names, 1)
            ),
            "default_queue_type = quorum",
            "",
        ]
    )
    return tuple(
        Service(
            broker="rabbitmq",
            name=name,
            image=single.image,
            tag=single.tag,
            ports=(Port(settings.port("rabbitmq") + CLUSTER_PORT_STEP * i, 5672),),
            environment={
                **single.environment,
                # Nodes (and the CLI tools of the health check) authenticate with one cookie.
                "RABBITMQ_ERLANG_COOKIE": Secret("LAB_RABBITMQ_COOKIE"),
            },
            healthcheck=single.healthcheck,
            stop_timeout=single.stop_timeout,
            labels=single.labels,
            files={"/etc/rabbitmq/conf.d/20-lab-cluster.conf": conf},
        )
        for i, name in enumerate(names, 1)
    )
