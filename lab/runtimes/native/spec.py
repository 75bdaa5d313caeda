"""What the native runtime needs to know about one broker: files, processes, endpoint."""

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from lab.endpoints import Endpoint
from lab.runtimes.native.processes import ProcessSpec
from lab.settings import Settings

if TYPE_CHECKING:
    from lab.brokers.plugin import BrokerPlugin

SETUP_HINT = "run `make setup` in the Broker Lab checkout"


class NativeBroker:
    """One broker on this host; each broker's package subclasses it (its native.py)."""

    start_timeout: float = 60.0
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 20.0

    def __init__(self, settings: Settings, plugin: "BrokerPlugin") -> None:
        self.settings = settings
        self.plugin = plugin
        self.name = plugin.name
        # Ports (Settings.port names) that must be free to start it.
        self.port_names = tuple(plugin.ports)
        self.dir = settings.broker_dir(self.name)
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "broker.log"

    @property
    def port(self) -> int:
        """Where its clients connect."""
        return self.settings.client_port(self.name)

    def endpoint(self) -> Endpoint:
        secret = self.secret() if self.plugin.password else None
        return self.plugin.endpoint("127.0.0.1", self.port, secret)

    def missing(self) -> str | None:
        """A sentence naming what is not installed and the command that installs it."""
        raise NotImplementedError

    def version(self) -> str | None:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configuration and initialise the data directory if it is new."""
        raise NotImplementedError

    def processes(self) -> list[ProcessSpec]:
        """The processes to start, in order; the last one is the broker itself."""
        raise NotImplementedError

    def secret(self) -> str:
        return self.settings.secret(self.name)


def first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def which(name: str, *candidates: str) -> str | None:
    """The program on PATH, or the first of the given absolute paths that exists."""
    found = shutil.which(name)
    if found:
        return found
    return next((c for c in candidates if Path(c).exists()), None)


def write_private(path: Path, text: str) -> None:
    """Write a file that may hold a secret: mode 0600 from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
