"""kinesalite from the npm registry (setup installs it into the lab's cache dir), run by
the machine's Node.js: `node serve.js`, one process, so the lab's signals reach it."""

import json
import shutil
from pathlib import Path

from lab.runtimes.native.processes import ProcessSpec
from lab.runtimes.native.spec import SETUP_HINT, NativeBroker

KINESALITE_VERSION = "3.3.3"  # setup.sh reads it from here
HEAP_MB = 256  # kinesalite keeps its records in LevelDB, not on the heap

# kinesalite's own cli.js listens on every interface; this does what it does, on loopback.
# Its LevelDB is closed on SIGTERM, after dropping the clients' keep-alive connections.
SERVE_JS = """\
// Written by Broker Lab: kinesalite on 127.0.0.1 only.
const config = require(process.argv[2]);
const server = require(config.module)(config.options);
server.listen(config.port, "127.0.0.1", () => {
  console.log("kinesalite %s listening at http://127.0.0.1:%d, data in %s",
    config.version, config.port, config.options.path);
});
function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
"""


def server_version(version: str = KINESALITE_VERSION) -> str:
    return f"kinesalite {version}"


def kinesalite_home(cache_dir: Path) -> Path:
    return cache_dir / f"kinesalite-{KINESALITE_VERSION}"


class KinesaliteBroker(NativeBroker):
    start_timeout = 30.0

    @property
    def module(self) -> Path:
        return kinesalite_home(self.settings.cache_dir) / "node_modules" / "kinesalite"

    def missing(self) -> str | None:
        if not shutil.which("node"):
            return f"Node.js is not installed: {SETUP_HINT} (or: apt-get install nodejs)"
        if not (self.module / "index.js").exists():
            where = kinesalite_home(self.settings.cache_dir)
            return f"kinesalite {KINESALITE_VERSION} is not installed in {where}: {SETUP_HINT}"
        return None

    def installed(self) -> str:
        """The version of the kinesalite package setup installed."""
        try:
            return json.loads((self.module / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            return KINESALITE_VERSION

    def version(self) -> str | None:
        # The server by name: "3.3.3" alone reads as a Kinesis version, which has none.
        return server_version(self.installed())

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "module": str(self.module),
            "version": self.installed(),
            "port": self.port,
            "options": {
                # Persistent, always: a stream's storage is chosen when the server starts,
                # not per run (settings.py says so for `fast`).
                "path": str(self.data_dir),
                # The service takes about 30 s to make a stream ACTIVE; kinesalite 500 ms
                # by default. A run waits for ACTIVE either way.
                "createStreamMs": 50,
                "deleteStreamMs": 50,
                "updateStreamMs": 50,
                # Open shards of every stream together (kinesalite: 10 by default; the
                # service: 500 or 200 an account, by region).
                "shardLimit": 500,
            },
        }
        (self.dir / "kinesalite.json").write_text(json.dumps(config, indent=1))
        (self.dir / "serve.js").write_text(SERVE_JS)

    def processes(self) -> list[ProcessSpec]:
        argv = [
            shutil.which("node") or "node",
            f"--max-old-space-size={HEAP_MB}",
            str(self.dir / "serve.js"),
            str(self.dir / "kinesalite.json"),
        ]
        return [ProcessSpec("kinesalite", argv, cwd=self.dir)]
