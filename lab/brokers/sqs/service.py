"""ElasticMQ as a container, for the docker runtime and compose/."""

from lab.brokers.sqs.native import pinned_version, store_uri
from lab.runtimes.containers import BROKER_LABEL, HealthCheck, Port, Service
from lab.settings import Settings

# The project's JVM image of the release the native runtime assembles: the same jars,
# the H2 message store included (the GraalVM image, elasticmq-native, is another build).
IMAGE = ("softwaremill/elasticmq", pinned_version())
PORT = 9324
STORE = "/tmp/elasticmq/elasticmq"  # the image's user may write there


def single_node(settings: Settings) -> Service:
    # The image starts `java -Dconfig.file=... -jar`; settings given as system properties
    # (JAVA_TOOL_OPTIONS reaches any JVM) override its configuration file.
    options = " ".join(
        [
            "-Xms64m",
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # as native.py says why
            "-Dnode-address.host=*",
            "-Dmessages-storage.enabled=true",
            f"-Dmessages-storage.uri={store_uri(STORE)}",
        ]
    )
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{PORT} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3"
    return Service(
        broker="sqs",
        name="sqs",
        image=IMAGE[0],
        tag=IMAGE[1],
        ports=(Port(settings.port("sqs"), PORT),),
        environment={"JAVA_TOOL_OPTIONS": options},
        healthcheck=HealthCheck(
            ("CMD-SHELL", f'bash -c "{probe} && grep -q OK <&3"'),
            interval=5,
            timeout=5,
            retries=5,
            start_period=20,
        ),
        stop_timeout=20,
        labels={BROKER_LABEL: "sqs"},
        version=f"ElasticMQ {IMAGE[1]}",
    )
