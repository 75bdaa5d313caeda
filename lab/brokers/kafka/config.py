"""Kafka's server settings, the same for the native broker and its containers."""

from lab.settings import Settings


def single_node(settings: Settings, bind: str) -> dict[str, str]:
    """One KRaft node, broker and controller. Two client listeners: PLAINTEXT for the lab's
    own admin calls, and PROXIED, which advertises the chaos proxy's port so that every
    connection of a workload (metadata included) goes through the proxy. `bind`: the
    address the client listeners bind (a container's must be reachable from outside)."""
    s = settings
    plain, controller, proxied = (s.port(n) for n in ("kafka", "kafka-controller", "kafka-proxied"))
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": (
            f"PLAINTEXT://{bind}:{plain},"
            f"CONTROLLER://127.0.0.1:{controller},"
            f"PROXIED://{bind}:{proxied}"
        ),
        "advertised.listeners": (
            f"PLAINTEXT://127.0.0.1:{plain},PROXIED://127.0.0.1:{s.proxy_port('kafka')}"
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT"
        ),
    }


def common(replication: int, log_dir: str) -> dict[str, str]:
    """The settings of every node the lab runs, for `replication` nodes."""
    min_isr = str(max(1, replication - 1))
    return {
        "log.dirs": log_dir,
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "default.replication.factor": str(replication),
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": str(replication),
        # 50 partitions by default; 8 makes the first consumer group join seconds faster.
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        # Retention checks every 5 s so that retention a recipe sets shows within a run.
        "log.retention.check.interval.ms": "5000",
    }
