"""A Docker Engine API double: an HTTP server on a Unix socket, in a thread of the test
process, that implements the endpoints the docker runtime calls and records every call.

It keeps images and containers as plain dicts and changes their state the way the engine
does (create -> start -> running, kill -> exited 137, pause -> paused, ...). It runs no
process: a "running" container is only a record, so the tests point the runtime at the
native brokers' ports, where real brokers answer the runtime's protocol-level probes.

    with DockerDouble(tmp_path / "docker.sock") as engine:
        monkeypatch.setenv("DOCKER_HOST", engine.url)
        ...
        engine.calls_to("POST", "/containers/create")
"""

import contextlib
import json
import re
import secrets
import shutil
import socket
import socketserver
import struct
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from lab.brokers.kafka.native import pinned_version

API_VERSION = "1.45"
# The official images and tags the runtime must ask for, written out here rather than
# read from the runtime, so a changed tag is a failing test, not a silent change.
IMAGES = {
    "kafka": f"apache/kafka:{pinned_version()}",
    "rabbitmq": "rabbitmq:4.1-management",
    "redis": "redis:7.4",
    "postgres": "postgres:17",
    "sqs": "softwaremill/elasticmq:1.7.1",
    # kinesalite has no image of its own: Node.js's, which installs it from npm.
    "kinesis": "node:20-bookworm-slim",
    "pubsub": "gcr.io/google.com/cloudsdktool/google-cloud-cli:528.0.0-emulators",
}


@contextmanager
def socket_dir() -> Iterator[Path]:
    """A short directory for the socket: a Unix socket path must fit in 107 bytes, which
    pytest's tmp_path (it grows with the test's name) does not promise."""
    path = Path(tempfile.mkdtemp(prefix="docker-double-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Call:
    method: str
    path: str  # without the /v1.xx prefix
    query: dict[str, str]
    body: object = None


@dataclass
class Stats:
    """What the stats endpoint reports; cumulative counters grow by a step per call."""

    cpu_step: int = 500_000_000  # ns of CPU the container uses between two calls
    system_step: int = 4_000_000_000  # ns the host's CPUs advance between two calls
    online_cpus: int = 2
    usage: int = 300 * 2**20
    inactive_file: int = 50 * 2**20


@dataclass
class Behaviour:
    """How the engine misbehaves, set by a test."""

    pullable: set[str] | None = None  # refs a pull can fetch; None: every ref
    pull_http_error: dict[str, tuple[int, str]] = field(default_factory=dict)
    pull_stream_error: dict[str, str] = field(default_factory=dict)
    start_error: dict[str, tuple[int, str]] = field(default_factory=dict)  # by container name
    exit_on_start: dict[str, int] = field(default_factory=dict)  # by container name
    health: str = "healthy"  # the Health.Status a running container reports


class DockerDouble:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = Path(socket_path)
        self.calls: list[Call] = []
        self.images: dict[str, dict] = {}
        self.containers: dict[str, dict] = {}  # id -> inspect document
        self.logs: dict[str, str] = {}  # container name -> its output
        self.stats = Stats()
        self.behaviour = Behaviour()
        self.lock = threading.RLock()
        self._server: socketserver.UnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> "DockerDouble":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.socket_path.unlink(missing_ok=True)
        self._server = _Server(str(self.socket_path), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="docker-double", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._thread.join(5)
            self._server = None
        self.socket_path.unlink(missing_ok=True)

    # --- test helpers ---------------------------------------------------------------

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method and re.fullmatch(pattern, c.path)]

    def add_image(self, ref: str) -> None:
        with self.lock:
            self.images[ref] = {"Id": "sha256:" + secrets.token_hex(32), "RepoTags": [ref]}

    def add_container(
        self, name: str, labels: dict[str, str], status: str = "running", image: str = "x:1"
    ) -> str:
        """A container that exists before the test's runtime looks (a leftover, a stranger)."""
        with self.lock:
            cid = self._new_container(name, {"Image": image, "Labels": labels}, {})
            self._set_state(self.containers[cid], status)
            return cid

    def by_name(self, name: str) -> dict | None:
        with self.lock:
            return next((c for c in self.containers.values() if c["Name"] == "/" + name), None)

    # --- the engine -----------------------------------------------------------------

    def _new_container(self, name: str, config: dict, host_config: dict) -> str:
        cid = secrets.token_hex(32)
        self.containers[cid] = {
            "Id": cid,
            "Name": "/" + name,
            "Image": "sha256:" + secrets.token_hex(32),
            "Config": {**config, "Tty": False},
            "HostConfig": host_config,
            "State": {},
            "_cpu": 0,
            "_system": 0,
        }
        self._set_state(self.containers[cid], "created")
        return cid

    def _set_state(self, container: dict, status: str, exit_code: int = 0) -> None:
        container["State"] = {
            "Status": status,
            "Running": status in ("running", "paused"),
            "Paused": status == "paused",
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": 4242 if status in ("running", "paused") else 0,
            "ExitCode": exit_code,
            "Health": {"Status": self.behaviour.health if status == "running" else "unhealthy"},
        }

    def _find(self, ref: str) -> dict | None:
        if ref in self.containers:
            return self.containers[ref]
        return self.by_name(ref) or next(
            (c for cid, c in self.containers.items() if cid.startswith(ref)), None
        )

    def _matches(self, container: dict, filters: dict) -> bool:
        labels = container["Config"].get("Labels") or {}
        for wanted in filters.get("label", []):
            key, eq, value = wanted.partition("=")
            if key not in labels or (eq and labels[key] != value):
                return False
        return True

    def handle(self, method: str, path: str, query: dict[str, str], body: object) -> tuple:
        """(status, JSON-able body | bytes | None, content type)."""
        with self.lock:
            self.calls.append(Call(method, path, query, body))
            return self._route(method, path, query, body)

    def _route(self, method: str, path: str, query: dict[str, str], body: object) -> tuple:
        if path == "/_ping":
            return 200, b"OK", "text/plain"
        if path == "/version":
            return 200, {"Version": "27.3.1", "ApiVersion": API_VERSION, "Os": "linux"}, None
        if m := re.fullmatch(r"/images/(.+)/json", path):
            ref = unquote(m[1])
            if ref in self.images:
                return 200, self.images[ref], None
            return 404, {"message": f"No such image: {ref}"}, None
        if path == "/images/create" and method == "POST":
            return self._pull(f"{query.get('fromImage')}:{query.get('tag')}")
        if path == "/containers/create" and method == "POST":
            return self._create(query.get("name", ""), body)
        if path == "/containers/json":
            filters = json.loads(query.get("filters", "{}"))
            found = [c for c in self.containers.values() if self._matches(c, filters)]
            if query.get("all") not in ("1", "true", "True"):
                found = [c for c in found if c["State"]["Running"]]
            return 200, [_summary(c) for c in found], None
        m = re.fullmatch(r"/containers/([^/]+)(/[a-z]+)?", path)
        if not m:
            return 404, {"message": f"page not found: {method} {path}"}, None
        container = self._find(m[1])
        if container is None:
            return 404, {"message": f"No such container: {m[1]}"}, None
        return self._container_op(method, m[2] or "", container, query)

    def _pull(self, ref: str) -> tuple:
        if ref in self.behaviour.pull_http_error:
            status, message = self.behaviour.pull_http_error[ref]
            return status, {"message": message}, None
        lines = [{"status": f"Pulling from {ref.rpartition(':')[0]}", "id": ref.rpartition(":")[2]}]
        if ref in self.behaviour.pull_stream_error:
            message = self.behaviour.pull_stream_error[ref]
            lines.append({"errorDetail": {"message": message}, "error": message})
        elif self.behaviour.pullable is None or ref in self.behaviour.pullable:
            self.add_image(ref)
            lines.append({"status": f"Status: Downloaded newer image for {ref}"})
        else:
            return (
                404,
                {"message": f"pull access denied for {ref}, repository does not exist"},
                None,
            )
        return 200, Chunks(json.dumps(line).encode() + b"\r\n" for line in lines), None

    def _create(self, name: str, body: dict) -> tuple:
        if self.by_name(name):
            return (
                409,
                {"message": f'Conflict. The container name "/{name}" is already in use'},
                None,
            )
        if body.get("Image") not in self.images:
            return 404, {"message": f"No such image: {body.get('Image')}"}, None
        config = {k: v for k, v in body.items() if k != "HostConfig"}
        cid = self._new_container(name, config, body.get("HostConfig") or {})
        return 201, {"Id": cid, "Warnings": []}, None

    def _container_op(self, method: str, op: str, c: dict, query: dict[str, str]) -> tuple:
        status = c["State"]["Status"]
        name = c["Name"][1:]
        if method == "GET" and op == "/json":
            return 200, {k: v for k, v in c.items() if not k.startswith("_")}, None
        if method == "DELETE" and op == "":
            if status in ("running", "paused") and query.get("force") not in ("1", "true", "True"):
                return 409, {"message": f"cannot remove running container {name}"}, None
            del self.containers[c["Id"]]
            return 204, None, None
        if method == "POST" and op == "/start":
            if status == "running":
                return 304, None, None
            if name in self.behaviour.start_error:
                code, message = self.behaviour.start_error[name]
                return code, {"message": message}, None
            if name in self.behaviour.exit_on_start:
                self._set_state(c, "exited", self.behaviour.exit_on_start[name])
            else:
                self._set_state(c, "running")
            return 204, None, None
        if method == "POST" and op in ("/stop", "/restart"):
            if op == "/stop" and status not in ("running", "paused"):
                return 304, None, None
            self._set_state(c, "running" if op == "/restart" else "exited", 0)
            return 204, None, None
        if method == "POST" and op == "/kill":
            if status != "running":
                return 409, {"message": f"Container {c['Id']} is not running"}, None
            self._set_state(c, "exited", 137 if query.get("signal") in ("SIGKILL", "9") else 143)
            return 204, None, None
        if method == "POST" and op in ("/pause", "/unpause"):
            wanted = "running" if op == "/pause" else "paused"
            if status != wanted:
                return 409, {"message": f"Container {c['Id']} is not {wanted}"}, None
            self._set_state(c, "paused" if op == "/pause" else "running")
            return 204, None, None
        if method == "GET" and op == "/stats":
            return 200, self._stats(c), None
        if method == "GET" and op == "/logs":
            return 200, self._logs(name, query), "application/vnd.docker.multiplexed-stream"
        return 404, {"message": f"page not found: {method} /containers/{{id}}{op}"}, None

    def _stats(self, c: dict) -> dict:
        s = self.stats
        running = c["State"]["Status"] == "running"
        if running:
            c["_cpu"] += s.cpu_step
            c["_system"] += s.system_step
        return {
            "cpu_stats": {
                "cpu_usage": {"total_usage": c["_cpu"]},
                "system_cpu_usage": c["_system"],
                "online_cpus": s.online_cpus,
            },
            # one-shot samples carry no previous sample
            "precpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0},
            "memory_stats": {"usage": s.usage, "stats": {"inactive_file": s.inactive_file}},
        }

    def _logs(self, name: str, query: dict[str, str]) -> bytes:
        lines = self.logs.get(name, f"{name}: started\n").splitlines(keepends=True)
        tail = query.get("tail", "all")
        if tail != "all":
            lines = lines[-int(tail) :] if int(tail) else []
        payload = "".join(lines).encode()
        # Containers without a TTY stream stdout and stderr in frames: a stream byte,
        # three zero bytes and a big-endian length, then the bytes.
        return struct.pack(">BxxxL", 1, len(payload)) + payload if payload else b""


class Chunks(list):
    """A response sent chunked, one part per chunk, as the engine streams pull progress."""


def _summary(c: dict) -> dict:
    return {
        "Id": c["Id"],
        "Names": [c["Name"]],
        "Image": c["Config"].get("Image"),
        "Labels": c["Config"].get("Labels") or {},
        "State": c["State"]["Status"],
        "Status": c["State"]["Status"],
    }


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    # `up` starts every broker at once, each thread on its own connection: with the default
    # backlog of 5 a Unix socket refuses the rest with EAGAIN. dockerd listens with more.
    request_queue_size = 128

    def __init__(self, path: str, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(path, handler)
        self.open: set[socket.socket] = set()

    def process_request(self, request: socket.socket, client_address: object) -> None:
        self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        self.open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End the clients' pooled keep-alive connections, so no handler thread outlives
        the double."""
        for request in list(self.open):
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_RDWR)


def _handler(double: DockerDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
        timeout = 10  # an idle pooled connection does not keep its thread forever

        def log_message(self, format: str, *args: object) -> None:
            pass  # the double records calls; stderr stays quiet

        def _serve(self) -> None:
            url = urlsplit(self.path)
            path = re.sub(r"^/v\d+\.\d+", "", url.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, payload, ctype = double.handle(self.command, path, query, body)
            if isinstance(payload, Chunks):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in payload:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
                return
            if isinstance(payload, bytes):
                data = payload
            else:
                data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype or "application/json")
            self.send_header("Api-Version", API_VERSION)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD" and status not in (204, 304):
                self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_HEAD = _serve

    return Handler
