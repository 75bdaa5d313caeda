"""Where the lab keeps its state and which loopback ports its brokers use.

Everything can be moved with environment variables, so a test run, a second lab and a
user's everyday lab never share a port or a directory:

    LAB_STATE_DIR   state directory (data, logs, pid files, generated passwords)
    LAB_PORT_BASE   first port of the lab's block (default 17000)
    LAB_CACHE_DIR   where setup put downloaded software (Kafka's jars)
"""

import os
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

DEFAULT_PORT_BASE = 17000

# Offsets inside the lab's port block. They echo each broker's standard port (9092,
# 5672, 6379, 5432) so a user can tell them apart, while staying out of the way of the
# system services on those standard ports.
PORT_OFFSETS = {
    "kafka": 92,
    "kafka-controller": 93,
    "kafka-proxied": 94,
    "rabbitmq": 672,
    "rabbitmq-dist": 673,
    "rabbitmq-epmd": 369,
    "redis": 379,
    "postgres": 432,
}
# Chaos proxies listen PROXY_SHIFT above the broker's own port.
PROXY_SHIFT = 1000


def _default_state_dir() -> Path:
    if os.geteuid() == 0:
        # PostgreSQL runs as the `postgres` user when the lab is root, and must reach its
        # data directory: /root is closed to it, /var/lib is not.
        return Path("/var/lib/broker-lab")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "broker-lab"


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    port_base: int
    cache_dir: Path

    @classmethod
    def from_env(cls) -> "Settings":
        state = os.environ.get("LAB_STATE_DIR")
        base = os.environ.get("LAB_PORT_BASE", str(DEFAULT_PORT_BASE))
        try:
            port_base = int(base)
        except ValueError:
            raise LabError(f"LAB_PORT_BASE must be a number, not '{base}'") from None
        if not 1024 <= port_base <= 64000:
            raise LabError(f"LAB_PORT_BASE must be between 1024 and 64000, not {port_base}")
        xdg_cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        cache = os.environ.get("LAB_CACHE_DIR") or str(Path(xdg_cache) / "broker-lab")
        return cls(
            state_dir=Path(state).absolute() if state else _default_state_dir(),
            port_base=port_base,
            cache_dir=Path(cache),
        )

    def port(self, name: str) -> int:
        return self.port_base + PORT_OFFSETS[name]

    def proxy_port(self, broker: str) -> int:
        return self.port(broker) + PROXY_SHIFT

    def proxy_route(self, broker: str) -> tuple[int, str, int]:
        """(listen port, upstream host, upstream port) of the broker's chaos proxy. Kafka's
        proxy forwards to the listener that advertises the proxy's own port."""
        upstream = self.port("kafka-proxied" if broker == "kafka" else broker)
        return self.proxy_port(broker), "127.0.0.1", upstream

    def broker_dir(self, broker: str) -> Path:
        return self.state_dir / broker
