"""ElasticMQ, the SQS-compatible server, from the jars setup assembled, run by `java`."""

import re
import shutil
from pathlib import Path

from lab.runtimes.native.processes import ProcessSpec
from lab.runtimes.native.spec import SETUP_HINT, NativeBroker

POM = Path(__file__).resolve().parent / "pom.xml"  # what setup assembled
DEFAULT_VERSION = "1.7.1"
MAIN = "org.elasticmq.server.Main"

# ElasticMQ holds its queues on the heap: 256 MiB keeps a backlog of about a million
# small messages, and seven brokers share two cores, so one GC thread will do. The C1
# compiler only (TieredStopAtLevel=1): a run starts seconds after the server, and C2's
# compiles took those seconds from the run on two busy cores (a fresh server served a
# third of its later rate for its first 10 s; with C1 alone it was there within 3 s, and
# no slower after 30 s).
JVM_OPTIONS = [
    "-Xms64m",
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]

LOGBACK = """\
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.elasticmq" level="INFO"/>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def pinned_version() -> str:
    try:
        match = re.search(r"<elasticmq.version>(.+?)</elasticmq.version>", POM.read_text())
    except OSError:
        match = None
    return match.group(1) if match else DEFAULT_VERSION


def config(port: int, store: str, bind: str) -> str:
    """ElasticMQ's HOCON configuration. Queue URLs take the host a request came to
    (node-address.host "*"), so they are right through the chaos proxy as well."""
    return f"""\
include classpath("application.conf")
node-address {{ protocol = http, host = "*", port = {port}, context-path = "" }}
rest-sqs {{ enabled = true, bind-port = {port}, bind-hostname = "{bind}", sqs-limits = strict }}
generate-node-address = false
# Every message event is written to H2 before ElasticMQ answers; WRITE_DELAY=0 makes H2
# write each commit at once rather than up to half a second later, so that a killed
# server keeps what it acknowledged. RETENTION_TIME=0 reuses the space of old chunks at
# once: with H2's default of 45 s, 3,000 messages left a 169 MB file here (H2 warns that
# this risks the file on a power failure, not on a killed process).
messages-storage {{ enabled = true, uri = "{store}" }}
aws {{ region = "elasticmq", accountId = "000000000000" }}
"""


def store_uri(path: str) -> str:
    return f"jdbc:h2:{path};WRITE_DELAY=0;RETENTION_TIME=0"


class ElasticMQBroker(NativeBroker):
    start_timeout = 60.0
    stop_timeout = 20.0

    @property
    def home(self) -> Path:
        return self.settings.cache_dir / f"elasticmq-{pinned_version()}"

    def missing(self) -> str | None:
        if not shutil.which("java"):
            return (
                f"Java is not installed: {SETUP_HINT} (or: apt-get install openjdk-17-jre-headless)"
            )
        if not (self.home / ".complete").exists():
            return f"ElasticMQ {pinned_version()} is not assembled in {self.home}: {SETUP_HINT}"
        return None

    def version(self) -> str | None:
        return f"ElasticMQ {pinned_version()}"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store = store_uri(str(self.data_dir / "elasticmq"))
        (self.dir / "elasticmq.conf").write_text(config(self.port, store, "127.0.0.1"))
        (self.dir / "logback.xml").write_text(LOGBACK)

    def processes(self) -> list[ProcessSpec]:
        argv = [
            "java",
            *JVM_OPTIONS,
            f"-Dconfig.file={self.dir / 'elasticmq.conf'}",
            f"-Dlogback.configurationFile={self.dir / 'logback.xml'}",
            "-cp",
            str(self.home / "libs" / "*"),
            MAIN,
        ]
        return [ProcessSpec("elasticmq", argv, cwd=self.dir)]
