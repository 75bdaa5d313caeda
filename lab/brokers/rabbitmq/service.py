"""RabbitMQ as containers: the single node the docker runtime runs, and a three-node cluster
for compose/ (run it with `docker compose`, reach it with the external runtime)."""

from lab.brokers.rabbitmq.options import USER
from lab.runtimes.containers import (
    BROKER_LABEL,
    CLUSTER_NODES,
    CLUSTER_PORT_STEP,
    HealthCheck,
    Port,
    Secret,
    Service,
)
from lab.settings import Settings

IMAGE = ("rabbitmq", "4.1-management")  # pinned to major.minor: patch releases come in


def single_node(settings: Settings) -> Service:
    return Service(
        broker="rabbitmq",
        name="rabbitmq",
        image=IMAGE[0],
        tag=IMAGE[1],
        ports=(Port(settings.port("rabbitmq"), 5672),),
        # The default user replaces `guest` on the node's first boot, with a generated password.
        environment={
            "RABBITMQ_DEFAULT_USER": USER,
            "RABBITMQ_DEFAULT_PASS": Secret("LAB_RABBITMQ_PASSWORD"),
        },
        healthcheck=HealthCheck(
            ("CMD", "rabbitmq-diagnostics", "-q", "ping"),
            interval=10,
            timeout=10,
            retries=5,
            start_period=60,
        ),
        labels={BROKER_LABEL: "rabbitmq"},
    )


def three_nodes(settings: Settings) -> tuple[Service, ...]:
    """Three RabbitMQ nodes that find each other through a fixed list and create quorum
    queues by default (a queue declared without x-queue-type is replicated too)."""
    single = single_node(settings)
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
