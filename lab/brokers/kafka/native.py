"""Apache Kafka in KRaft mode (one node, broker + controller), from the jars setup assembled."""

import re
import shutil
import subprocess
import uuid
from pathlib import Path

from lab.brokers.kafka import config as kafka_config
from lab.errors import LabError
from lab.runtimes.native.processes import ProcessSpec
from lab.runtimes.native.spec import SETUP_HINT, NativeBroker

POM = Path(__file__).resolve().parent / "pom.xml"  # what setup assembled
DEFAULT_VERSION = "4.1.1"

# Kafka's own start scripts use a 1 GiB heap and these GC settings. One GiB is plenty for a
# lab broker: Kafka lives on the page cache, and the other three brokers need the RAM too.
JVM_OPTIONS = [
    "-Xms1g",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]

LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.controller
        level: WARN
      - name: state.change.logger
        level: WARN
      - name: org.apache.kafka.storage.internals.log
        level: WARN
"""


def pinned_version() -> str:
    try:
        match = re.search(r"<kafka.version>(.+?)</kafka.version>", POM.read_text())
    except OSError:
        match = None
    return match.group(1) if match else DEFAULT_VERSION


class KafkaBroker(NativeBroker):
    start_timeout = 60.0
    stop_timeout = 30.0

    @property
    def home(self) -> Path:
        return self.settings.cache_dir / f"kafka-{pinned_version()}"

    @property
    def classpath(self) -> str:
        return str(self.home / "libs" / "*")

    def missing(self) -> str | None:
        if not shutil.which("java"):
            return (
                f"Java is not installed: {SETUP_HINT} (or: apt-get install openjdk-17-jre-headless)"
            )
        if not (self.home / ".complete").exists():
            return f"Apache Kafka {pinned_version()} is not assembled in {self.home}: {SETUP_HINT}"
        return None

    def version(self) -> str | None:
        return pinned_version()

    def _java(self, main: str, *args: str) -> subprocess.CompletedProcess:
        argv = [
            "java",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.yaml'}",
            "-cp",
            self.classpath,
            main,
            *args,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = {
            **kafka_config.single_node(self.settings, "127.0.0.1"),
            **kafka_config.common(replication=1, log_dir=str(self.data_dir)),
        }
        (self.dir / "server.properties").write_text(
            "".join(f"{k}={v}\n" for k, v in config.items())
        )
        (self.dir / "log4j2.yaml").write_text(LOG4J2)
        if (self.data_dir / "meta.properties").exists():
            return
        done = self._java(
            "kafka.tools.StorageTool",
            "format",
            # One argument, not two: a base64 id may start with "-", which argparse would
            # take for an option.
            f"--cluster-id={_cluster_id()}",
            "--config",
            str(self.dir / "server.properties"),
            "--ignore-formatted",
        )
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LabError(f"formatting Kafka's storage failed: {last[0]}")

    def processes(self) -> list[ProcessSpec]:
        argv = [
            "java",
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.dir / 'logs'}",
            "-cp",
            self.classpath,
            "kafka.Kafka",
            str(self.dir / "server.properties"),
        ]
        return [ProcessSpec("kafka", argv, cwd=self.dir)]


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
