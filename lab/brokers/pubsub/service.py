"""The Pub/Sub emulator as a container, for the docker runtime and compose/.

Google's own emulators image, at the Cloud SDK release whose emulator (EMULATOR_VERSION)
the native runtime runs. The emulator's start script ends in `exec java`, so the JVM is
the container's process; where the image keeps the SDK has moved between releases, so
the command looks in both places.
"""

from lab.brokers.pubsub.native import SERVER
from lab.brokers.pubsub.options import NATIVE_PROJECT
from lab.runtimes.containers import BROKER_LABEL, HealthCheck, Port, Service
from lab.settings import Settings

IMAGE = ("gcr.io/google.com/cloudsdktool/google-cloud-cli", "528.0.0-emulators")
EMULATOR_VERSION = "0.8.20"  # what that release's platform/pubsub-emulator holds
PORT = 8085  # gcloud's default for the Pub/Sub emulator
SCRIPT = "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
HEAP = "-Xms32m -Xmx256m -XX:+UseSerialGC"  # as the native runtime runs it


def single_node(settings: Settings) -> Service:
    start = (
        f'for sdk in /google-cloud-sdk /usr/lib/google-cloud-sdk; do [ -x "$sdk/{SCRIPT}" ] '
        f'&& exec "$sdk/{SCRIPT}" --host=0.0.0.0 --port={PORT}; done; '
        "echo 'no Pub/Sub emulator in this image' >&2; exit 1"
    )
    return Service(
        broker="pubsub",
        name="pubsub",
        image=IMAGE[0],
        tag=IMAGE[1],
        ports=(Port(settings.port("pubsub"), PORT),),
        environment={"JAVA_OPTS": HEAP},
        command=("sh", "-c", start),
        # A real API call (the REST face of the same port): list the lab's topics.
        healthcheck=HealthCheck(
            (
                "CMD-SHELL",
                f"curl -sf http://127.0.0.1:{PORT}/v1/projects/{NATIVE_PROJECT}/topics >/dev/null",
            ),
            interval=5,
            timeout=5,
            retries=5,
            start_period=20,
        ),
        stop_timeout=10,
        labels={BROKER_LABEL: "pubsub"},
        version=f"{SERVER} {EMULATOR_VERSION}",  # the tag is the Cloud SDK's
    )
