"""Redis: `redis-server` with a generated config, AOF on, password required."""

import re

from lab.runtimes.native.processes import ProcessSpec
from lab.runtimes.native.spec import SETUP_HINT, NativeBroker, first_line, which, write_private


class RedisBroker(NativeBroker):
    start_timeout = 20.0

    def binary(self) -> str | None:
        return which("redis-server")

    def missing(self) -> str | None:
        if not self.binary():
            return f"redis-server is not installed: {SETUP_HINT} (or: apt-get install redis-server)"
        return None

    def version(self) -> str | None:
        match = re.search(r"v=(\S+)", first_line([self.binary() or "redis-server", "--version"]))
        return match.group(1) if match else None

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The file holds the password, so it is private and never passed on a command line.
        # AOF with fsync every second is Redis's own recommended durable setting; recipes
        # change appendfsync per run through CONFIG SET.
        write_private(
            self.dir / "redis.conf",
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    "protected-mode yes",
                    "daemonize no",
                    f"dir {self.data_dir}",
                    'save ""',
                    "appendonly yes",
                    "appendfsync everysec",
                    f"requirepass {self.secret()}",
                    "loglevel notice",
                    # Keep the environment readable, so the lab's process marks stay visible.
                    "set-proc-title no",
                    "",
                ]
            ),
        )

    def processes(self) -> list[ProcessSpec]:
        return [
            ProcessSpec(
                "redis-server", [self.binary() or "redis-server", str(self.dir / "redis.conf")]
            )
        ]
