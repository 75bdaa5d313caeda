"""The brokers as containers: image, ports, environment, command and health check.

Both the docker runtime and the compose files (compose/generate.py) are made from these
definitions, so `lab up --runtime docker` and `docker compose up` run the same brokers
with the same settings. Ports are the lab's own (Settings.port), published on 127.0.0.1.
"""

import base64
import os
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from lab.endpoints import Endpoint
from lab.errors import LabError
from lab.runtimes.native.kafka import pinned_version
from lab.settings import Settings

# Official images. Kafka is the exact release the native runtime assembles, so both
# runtimes run the same broker. The others are pinned to major.minor: their maintainers
# publish patch (security) releases under those tags, while the features compared stay.
KAFKA_IMAGE = ("apache/kafka", pinned_version())
RABBITMQ_IMAGE = ("rabbitmq", "4.1-management")
REDIS_IMAGE = ("redis", "7.4")
POSTGRES_IMAGE = ("postgres", "17")

USER = "lab"  # RabbitMQ's and PostgreSQL's user, as in the native runtime
BROKER_LABEL = "broker-lab.broker"

# The fixed KRaft cluster id of the lab's Kafka containers: 16 bytes, URL-safe base64.
KAFKA_CLUSTER_ID = (
    base64.urlsafe_b64encode(uuid.uuid5(uuid.NAMESPACE_URL, "broker-lab/kafka").bytes)
    .decode()
    .rstrip("=")
)
KAFKA_DATA = "/tmp/kraft-combined-logs"  # the image's own data dir, writable by its user


@dataclass(frozen=True)
class Secret:
    """A generated password. The runtime fills in the lab's secret for the broker;
    a compose file asks for it as a required variable (`variable`), never a default."""

    variable: str


@dataclass(frozen=True)
class Port:
    host: int
    container: int
    host_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class HealthCheck:
    test: tuple[str, ...]  # ("CMD", ...) or ("CMD-SHELL", "...")
    interval: int  # seconds
    timeout: int
    retries: int
    start_period: int


@dataclass(frozen=True)
class Service:
    broker: str
    name: str  # compose service name and container hostname
    image: str
    tag: str
    ports: tuple[Port, ...]
    environment: Mapping[str, str | Secret]
    healthcheck: HealthCheck
    command: tuple[str, ...] = ()
    stop_timeout: int = 30
    shm_size: str | None = None  # e.g. "256m"
    labels: Mapping[str, str] = field(default_factory=dict)
    # Files in the container: path -> content (compose `configs`; the clusters use them).
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.image}:{self.tag}"

    def secret(self) -> Secret | None:
        found = [v for v in self.environment.values() if isinstance(v, Secret)]
        return found[0] if found else None


def kafka_env(config: Mapping[str, str]) -> dict[str, str]:
    """Kafka properties as the apache/kafka image's variables: `.` -> `_`, `_` -> `__`,
    `-` -> `___`, upper case, prefixed with KAFKA_."""
    env = {}
    for key, value in config.items():
        name = key.replace("_", "__").replace("-", "___").replace(".", "_").upper()
        env[f"KAFKA_{name}"] = value
    return env


def kafka_common(replication: int) -> dict[str, str]:
    """The broker settings the native runtime's Kafka runs with, for `replication` nodes."""
    min_isr = str(max(1, replication - 1))
    return {
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
        "log.dirs": KAFKA_DATA,
    }


def kafka_healthcheck(host: str, port: int) -> HealthCheck:
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


def kafka(settings: Settings) -> Service:
    """One KRaft node, broker and controller, with the native runtime's listener layout.

    Inside the container Kafka listens on the lab's port numbers, published 1:1, so that
    the addresses it advertises (127.0.0.1:<lab port>) are right on the host and inside
    the container alike. PROXIED advertises the chaos proxy's port, so every connection a
    workload makes, metadata included, goes through the proxy.
    """
    s = settings
    plain, controller, proxied = (
        s.port("kafka"),
        s.port("kafka-controller"),
        s.port("kafka-proxied"),
    )
    config = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": (
            f"PLAINTEXT://0.0.0.0:{plain},"
            f"CONTROLLER://127.0.0.1:{controller},"
            f"PROXIED://0.0.0.0:{proxied}"
        ),
        "advertised.listeners": (
            f"PLAINTEXT://127.0.0.1:{plain},PROXIED://127.0.0.1:{s.proxy_port('kafka')}"
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT"
        ),
        **kafka_common(replication=1),
    }
    return Service(
        broker="kafka",
        name="kafka",
        image=KAFKA_IMAGE[0],
        tag=KAFKA_IMAGE[1],
        ports=(Port(plain, plain), Port(proxied, proxied)),
        environment={
            "CLUSTER_ID": KAFKA_CLUSTER_ID,
            # The native runtime's heap; the image's GC settings are the same as its own.
            "KAFKA_HEAP_OPTS": "-Xms1g -Xmx1g",
            **kafka_env(config),
        },
        healthcheck=kafka_healthcheck("127.0.0.1", plain),
        labels={BROKER_LABEL: "kafka"},
    )


def rabbitmq(settings: Settings) -> Service:
    return Service(
        broker="rabbitmq",
        name="rabbitmq",
        image=RABBITMQ_IMAGE[0],
        tag=RABBITMQ_IMAGE[1],
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


def redis(settings: Settings) -> Service:
    # The image takes no password variable: the shell hands it to redis-server, so the
    # container's command (visible in `docker inspect`) holds the variable's name only.
    # AOF with fsync every second, as the native runtime runs it.
    server = (
        "exec redis-server --port 6379 --appendonly yes --appendfsync everysec "
        '--save "" --requirepass "$REDIS_PASSWORD"'
    )
    return Service(
        broker="redis",
        name="redis",
        image=REDIS_IMAGE[0],
        tag=REDIS_IMAGE[1],
        ports=(Port(settings.port("redis"), 6379),),
        environment={"REDIS_PASSWORD": Secret("LAB_REDIS_PASSWORD")},
        command=("sh", "-c", server),
        healthcheck=HealthCheck(
            ("CMD-SHELL", 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p 6379 ping | grep -q PONG'),
            interval=5,
            timeout=5,
            retries=5,
            start_period=10,
        ),
        stop_timeout=20,
        labels={BROKER_LABEL: "redis"},
    )


def postgres(settings: Settings) -> Service:
    return Service(
        broker="postgres",
        name="postgres",
        image=POSTGRES_IMAGE[0],
        tag=POSTGRES_IMAGE[1],
        ports=(Port(settings.port("postgres"), 5432),),
        environment={
            "POSTGRES_USER": USER,
            "POSTGRES_PASSWORD": Secret("LAB_POSTGRES_PASSWORD"),
            "POSTGRES_DB": "postgres",
        },
        # The native runtime's server settings.
        command=(
            "postgres",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "max_wal_size=1GB",
        ),
        # Over TCP: during its first boot the image runs a socket-only server for initdb.
        healthcheck=HealthCheck(
            ("CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", USER, "-d", "postgres"),
            interval=5,
            timeout=5,
            retries=5,
            start_period=30,
        ),
        # Docker's default 64 MiB /dev/shm is too small for parallel queries' shared memory.
        shm_size="256m",
        labels={BROKER_LABEL: "postgres"},
    )


SERVICES = {"kafka": kafka, "rabbitmq": rabbitmq, "redis": redis, "postgres": postgres}

# How long `up` waits for the protocol-level answer after the container starts.
START_TIMEOUTS = {"kafka": 90.0, "rabbitmq": 90.0, "redis": 30.0, "postgres": 60.0}


def service(broker: str, settings: Settings) -> Service:
    return SERVICES[broker](settings)


def endpoint(broker: str, settings: Settings, password: str | None) -> Endpoint:
    """Where a client on the host reaches the container: the same as the native broker."""
    port = settings.port(broker)
    if broker == "kafka":
        return Endpoint("kafka", "127.0.0.1", port)
    if broker == "rabbitmq":
        return Endpoint("rabbitmq", "127.0.0.1", port, username=USER, password=password)
    if broker == "redis":
        return Endpoint("redis", "127.0.0.1", port, password=password, path="0")
    return Endpoint(
        "postgres", "127.0.0.1", port, username=USER, password=password, path="postgres"
    )


def generated_secret(settings: Settings, broker: str) -> str:
    """The broker's password, created on first use, readable by the owner only.

    The same file the native runtime uses: one lab state dir has one password per
    broker, whichever runtime runs it.
    """
    path = settings.broker_dir(broker) / "secret"
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(18))
        return path.read_text().strip()
    except FileExistsError:
        return path.read_text().strip()  # another lab process created it just now
    except OSError as exc:
        raise LabError(
            f"cannot keep {broker}'s password in {path} ({exc.strerror}): "
            "set LAB_STATE_DIR to a directory you can write"
        ) from None
