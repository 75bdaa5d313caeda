"""Where the lab keeps its state and which loopback ports its brokers use.

Everything can be moved with environment variables, so a test run, a second lab and a
user's everyday lab never share a port or a directory:

    LAB_STATE_DIR   state directory (data, logs, pid files, generated passwords)
    LAB_PORT_BASE   first port of the lab's block (default 17000)
    LAB_CACHE_DIR   where setup put downloaded software (Kafka's jars)
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from lab import brokers as registry
from lab.errors import LabError

DEFAULT_PORT_BASE = 17000
# Each broker has offsets inside the lab's port block (its plugin's `ports`): away from
# the system services on the standard ports. Chaos proxies listen PROXY_SHIFT above.
PROXY_SHIFT = 1000
PORT_BLOCK = 2 * PROXY_SHIFT  # what one lab's ports span, proxies included


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
        """A port of the lab's block, by its name in a broker's plugin."""
        return self.port_base + registry.port_offsets()[name]

    def client_port(self, broker: str) -> int:
        """Where the broker's clients connect."""
        return self.port(registry.get(broker).client_port)

    def proxy_port(self, broker: str) -> int:
        return self.client_port(broker) + PROXY_SHIFT

    def proxy_route(self, broker: str) -> tuple[int, str, int]:
        """(listen port, upstream host, upstream port) of the broker's chaos proxy."""
        plugin = registry.get(broker)
        upstream = self.port(plugin.proxy_upstream or plugin.client_port)
        return self.proxy_port(broker), "127.0.0.1", upstream

    def lab_ports(self) -> set[int]:
        """Every port this lab's brokers and proxies may listen on."""
        ports = {self.port_base + off for off in registry.port_offsets().values()}
        return ports | {p + PROXY_SHIFT for p in ports}

    def broker_dir(self, broker: str) -> Path:
        return self.state_dir / broker

    def ensure_state_dir(self) -> Path:
        """The state dir, created if this is the lab's first command on the machine."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LabError(
                f"the state dir {self.state_dir} cannot be created ({exc.strerror}): "
                "set LAB_STATE_DIR to a directory you can write"
            ) from None
        return self.state_dir

    def secret(self, broker: str) -> str:
        """The broker's generated password, created on first use, readable by the owner
        only. One file per broker, whichever runtime runs it."""
        path = self.broker_dir(broker) / "secret"
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
