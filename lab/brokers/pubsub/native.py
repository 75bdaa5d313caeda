"""Google's Pub/Sub emulator, the pubsub-emulator component of google-cloud-cli, run as
`java -jar` directly: `gcloud beta emulators pubsub start` forks the JVM off a Python
process, and the lab's kill, pause and resume must reach the server itself. It keeps
everything in memory; its data dir holds only the JVM's temporary files."""

import os
import re
import shutil
from pathlib import Path

from lab.runtimes.native.processes import ProcessSpec
from lab.runtimes.native.spec import SETUP_HINT, NativeBroker

# Where Debian's google-cloud-cli package, Google's archive and the snap put the SDK.
SDK_ROOTS = (
    "/usr/lib/google-cloud-sdk",
    "/usr/share/google-cloud-sdk",
    "/opt/google-cloud-sdk",
    "/snap/google-cloud-cli/current",
    "~/google-cloud-sdk",
)
JAR_GLOB = "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*.jar"
JAR_VERSION = re.compile(r"cloud-pubsub-emulator-([0-9][0-9.]*)")
SERVER = "Pub/Sub emulator"  # as Google's docs and `gcloud beta emulators pubsub` call it
# A small heap and the serial collector: the machine's two cores run seven brokers.
JVM_OPTIONS = [
    "-Xms32m",
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]
INSTALL = (
    "install google-cloud-cli's Pub/Sub emulator: `apt-get install "
    "google-cloud-cli-pubsub-emulator` from Google's Cloud SDK apt repository "
    "(packages.cloud.google.com, which these machines cannot reach: their image ships "
    "it), or `gcloud components install pubsub-emulator` for an SDK from Google's archive"
)


def sdk_roots() -> list[Path]:
    roots = [Path(r).expanduser() for r in SDK_ROOTS]
    gcloud = shutil.which("gcloud")
    if gcloud:
        roots.insert(0, Path(os.path.realpath(gcloud)).parent.parent)  # <root>/bin/gcloud
    return roots


def _version_key(jar: Path) -> tuple[int, ...]:
    match = JAR_VERSION.search(jar.name)
    return tuple(int(p) for p in match.group(1).strip(".").split(".")) if match else ()


def emulator_jar() -> Path | None:
    """The newest emulator jar of the first SDK that has one."""
    for root in sdk_roots():
        jars = sorted(root.glob(JAR_GLOB), key=_version_key)
        if jars:
            return jars[-1]
    return None


class PubsubEmulator(NativeBroker):
    start_timeout = 30.0

    def missing(self) -> str | None:
        if not shutil.which("java"):
            return (
                f"Java is not installed: {SETUP_HINT} (or: apt-get install openjdk-17-jre-headless)"
            )
        if emulator_jar() is None:
            where = ", ".join(str(r) for r in sdk_roots()[:2])
            return f"Google's Pub/Sub emulator is not installed (looked in {where}): {INSTALL}"
        return None

    def version(self) -> str | None:
        # The server by name: "0.8.20" alone reads as a Pub/Sub version, which has none.
        jar = emulator_jar()
        match = JAR_VERSION.search(jar.name) if jar else None
        return f"{SERVER} {match.group(1).strip('.')}" if match else None

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def processes(self) -> list[ProcessSpec]:
        argv = [
            "java",
            *JVM_OPTIONS,
            f"-Djava.io.tmpdir={self.data_dir}",
            "-jar",
            str(emulator_jar()),
            "--host=127.0.0.1",
            f"--port={self.port}",
        ]
        return [ProcessSpec("pubsub-emulator", argv, cwd=self.data_dir)]
