"""What every runtime reports about a broker."""

from dataclasses import asdict, dataclass
from enum import StrEnum


class BrokerState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    PAUSED = "paused"
    KILLED = "killed"


@dataclass(frozen=True)
class ResourceStats:
    cpu_percent: float
    rss_bytes: int


@dataclass(frozen=True)
class BrokerStatus:
    broker: str
    runtime: str
    state: BrokerState
    endpoint: str | None = None  # redacted URL
    pid: int | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    version: str | None = None
    detail: str = ""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["state"] = str(self.state)
        return data
