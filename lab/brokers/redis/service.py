"""Redis as a container, for the docker runtime and compose/."""

from lab.runtimes.containers import BROKER_LABEL, HealthCheck, Port, Secret, Service
from lab.settings import Settings

IMAGE = ("redis", "7.4")  # pinned to major.minor: patch releases come in


def single_node(settings: Settings) -> Service:
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
        image=IMAGE[0],
        tag=IMAGE[1],
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
