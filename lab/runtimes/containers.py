"""The brokers as containers: image, ports, environment, command and health check.

Each broker's package defines its Service (lab/brokers/<name>/service.py); both the
docker runtime and the compose files (compose/generate.py) are made from them, so
`lab up --runtime docker` and `docker compose up` run the same brokers with the same
settings. Ports are the lab's own (Settings.port), published on 127.0.0.1.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from lab import brokers as registry
from lab.endpoints import Endpoint
from lab.errors import LabError
from lab.settings import Settings

BROKER_LABEL = "broker-lab.broker"
CLUSTER_NODES = 3  # of the compose files' clusters
CLUSTER_PORT_STEP = 100  # node N publishes its client port at the lab's port + 100 * N


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
    # What `lab status` and results call the server, where the tag is not its version
    # (an emulator inside a Cloud SDK or Node.js image); None: the tag's version.
    version: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.image}:{self.tag}"

    def secret(self) -> Secret | None:
        found = [v for v in self.environment.values() if isinstance(v, Secret)]
        return found[0] if found else None


def service(broker: str, settings: Settings) -> Service:
    found = registry.get(broker).service(settings)
    if found is None:
        raise LabError(f"{broker} has no container image: run it with --runtime native")
    return found


def services(settings: Settings) -> dict[str, Service]:
    """The container of every broker that has one."""
    found = {name: p.service(settings) for name, p in registry.plugins().items()}
    return {name: svc for name, svc in found.items() if svc is not None}


def endpoint(broker: str, settings: Settings, password: str | None) -> Endpoint:
    """Where a client on the host reaches the container: the same as the native broker."""
    return registry.get(broker).endpoint("127.0.0.1", settings.client_port(broker), password)
