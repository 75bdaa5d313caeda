"""kinesalite as a container, for the docker runtime and compose/.

kinesalite publishes no image of its own: the official Node.js image installs the same
pinned release from the npm registry into /opt/kinesalite when the container first starts.
Inside it kinesalite's own cli.js listens on every interface; the port is published on
the host's 127.0.0.1 only."""

from lab.brokers.kinesis.native import KINESALITE_VERSION, server_version
from lab.runtimes.containers import BROKER_LABEL, HealthCheck, Port, Service
from lab.settings import Settings

IMAGE = ("node", "20-bookworm-slim")  # the Node.js the native runtime uses: 20
PORT = 4567

# A real API call (ListStreams), signed enough for kinesalite, which checks no signature.
HEALTH_JS = (
    f"require('http').request({{host:'127.0.0.1',port:{PORT},method:'POST',headers:{{"
    "'Content-Type':'application/x-amz-json-1.1',"
    "'X-Amz-Target':'Kinesis_20131202.ListStreams','X-Amz-Date':'20200101T000000Z',"
    "'Authorization':'AWS4-HMAC-SHA256 Credential=lab/20200101/us-east-1/kinesis/aws4_request,"
    " SignedHeaders=host, Signature=0'}},"
    "r=>process.exit(r.statusCode==200?0:1)).on('error',()=>process.exit(1)).end('{}')"
)


def single_node(settings: Settings) -> Service:
    home = "/opt/kinesalite"
    cli = f"{home}/node_modules/kinesalite/cli.js"
    server = (
        f"[ -e {cli} ] || npm install --prefix {home} --no-save --no-audit --no-fund"
        f" --ignore-scripts kinesalite@{KINESALITE_VERSION} >/dev/null"
        f" && exec node --max-old-space-size=256 {cli} --port {PORT} --path /data"
        " --createStreamMs 50 --deleteStreamMs 50 --updateStreamMs 50 --shardLimit 500"
    )
    return Service(
        broker="kinesis",
        name="kinesis",
        image=IMAGE[0],
        tag=IMAGE[1],
        ports=(Port(settings.port("kinesis"), PORT),),
        # npm asks its registry whether npm itself is out of date unless told not to.
        environment={"NPM_CONFIG_UPDATE_NOTIFIER": "false"},
        command=("sh", "-c", server),
        healthcheck=HealthCheck(
            ("CMD", "node", "-e", HEALTH_JS), interval=5, timeout=5, retries=10, start_period=60
        ),
        stop_timeout=10,
        labels={BROKER_LABEL: "kinesis"},
        version=server_version(),  # the tag is Node.js's
    )
