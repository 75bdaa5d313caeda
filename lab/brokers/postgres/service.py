"""PostgreSQL as a container, for the docker runtime and compose/."""

from lab.brokers.postgres.options import SUPERUSER
from lab.runtimes.containers import BROKER_LABEL, HealthCheck, Port, Secret, Service
from lab.settings import Settings

IMAGE = ("postgres", "17")  # pinned to the major release: minor (security) releases come in


def single_node(settings: Settings) -> Service:
    return Service(
        broker="postgres",
        name="postgres",
        image=IMAGE[0],
        tag=IMAGE[1],
        ports=(Port(settings.port("postgres"), 5432),),
        environment={
            "POSTGRES_USER": SUPERUSER,
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
            (
                "CMD",
                "pg_isready",
                "-h",
                "127.0.0.1",
                "-p",
                "5432",
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ),
            interval=5,
            timeout=5,
            retries=5,
            start_period=30,
        ),
        # Docker's default 64 MiB /dev/shm is too small for parallel queries' shared memory.
        shm_size="256m",
        labels={BROKER_LABEL: "postgres"},
    )
