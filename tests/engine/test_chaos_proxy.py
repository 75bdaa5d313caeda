"""The chaos proxy with real sockets: a small echo/sink server here, and the real Redis.

Timing assertions are lower bounds the toxic itself guarantees (a 100 ms delay each way
makes a round trip take at least 200 ms), never how fast this machine is.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab.errors import LabError
from lab.faults.proxy_host import ProxyHost
from tests.helpers import REPO


class Server:
    """A loopback TCP server, one thread per connection: echoes (or only counts) bytes,
    and remembers how each connection ended ("eof" or "reset")."""

    def __init__(self, echo: bool) -> None:
        self.echo = echo
        self.received = 0
        self.endings: list[str] = []
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        ending = "eof"
        with conn:
            try:
                while data := conn.recv(65536):
                    with self.lock:
                        self.received += len(data)
                    if self.echo:
                        conn.sendall(data)
            except ConnectionResetError:
                ending = "reset"
            except OSError:
                ending = "error"
        with self.lock:
            self.endings.append(ending)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def servers():
    echo, sink = Server(echo=True), Server(echo=False)
    yield echo, sink
    echo.close()
    sink.close()


@pytest.fixture
def host(servers):
    echo, sink = servers
    proxies = ProxyHost.start(
        {"echo": (0, "127.0.0.1", echo.port), "sink": (0, "127.0.0.1", sink.port)}
    )
    yield proxies
    proxies.stop()
    assert _gone(proxies.pid, 5)


@pytest.fixture
def redis_proxy(session_lab):
    endpoint = session_lab.endpoint("redis")
    proxies = ProxyHost.start({"redis": (0, endpoint.host, endpoint.port)})
    yield proxies, endpoint.via("127.0.0.1", proxies.ports["redis"])
    proxies.stop()
    assert _gone(proxies.pid, 5)


def redis_client(endpoint, timeout: float = 5.0) -> redis.Redis:
    # No retries: the test must see what the proxy did, not redis-py papering over it.
    return redis.Redis(
        host=endpoint.host,
        port=endpoint.port,
        password=endpoint.password,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def connect(host: ProxyHost, name: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", host.ports[name]), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(size - got)
        if not chunk:
            raise EOFError(f"connection closed after {got} of {size} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def round_trip(client: redis.Redis) -> float:
    t0 = time.monotonic()
    assert client.ping()
    return time.monotonic() - t0


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _gone(pid: int, timeout: float) -> bool:
    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return wait_until(gone, timeout)


# --- forwarding and toxics ----------------------------------------------------------


@pytest.mark.brokers
def test_redis_commands_pass_through(redis_proxy):
    proxies, endpoint = redis_proxy
    client = redis_client(endpoint)
    assert client.ping()
    client.set("chaos-proxy-key", b"x" * 100_000)
    assert client.get("chaos-proxy-key") == b"x" * 100_000
    stats = proxies.stats()["redis"]
    assert stats.connections_open == 1
    assert stats.bytes_up > 100_000 and stats.bytes_down > 100_000
    assert stats.toxics == {}
    client.close()
    assert wait_until(lambda: proxies.stats()["redis"].connections_open == 0)


@pytest.mark.brokers
def test_latency_delays_round_trips_until_heal(redis_proxy):
    proxies, endpoint = redis_proxy
    client = redis_client(endpoint)
    client.ping()
    proxies.set("redis", "latency", ms=100, jitter=0)
    assert proxies.stats()["redis"].toxics == {"latency": {"ms": 100.0, "jitter": 0.0}}
    # The request is delayed 100 ms, and so is the reply.
    assert min(round_trip(client) for _ in range(3)) >= 0.2
    proxies.set("redis", "heal")
    assert min(round_trip(client) for _ in range(5)) < 0.1
    client.close()


@pytest.mark.parametrize("latency_ms", [0, 50])
def test_half_close_follows_the_data(host, latency_ms):
    host.set("echo", "latency", ms=latency_ms)
    sock = connect(host, "echo")
    payload = os.urandom(300_000)
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)  # the echo server answers EOF with EOF
    assert recv_exactly(sock, len(payload)) == payload
    assert sock.recv(100) == b""
    sock.close()
    assert wait_until(lambda: host.stats()["echo"].connections_open == 0)


def test_jitter_never_reorders_the_stream(host):
    host.set("echo", "latency", ms=5, jitter=5)  # each chunk waits 0..10 ms
    sock = connect(host, "echo")
    records = [b"%06d\n" % i for i in range(300)]
    for record in records:
        sock.sendall(record)  # separate chunks, each with its own random delay
        time.sleep(0.001)
    assert recv_exactly(sock, sum(map(len, records))) == b"".join(records)
    sock.close()


def test_bandwidth_caps_each_direction(host):
    rate, size = 100_000, 100_000  # 100 kB/s: the echo needs about 1 s
    host.set("echo", "bandwidth", kbps=rate / 1000)
    payload = os.urandom(size)
    sock = connect(host, "echo", timeout=30)
    t0 = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, size) == payload
    elapsed = time.monotonic() - t0
    # A capped write carries at most 20 ms of traffic, and the first one goes at once.
    assert elapsed >= (size - 0.02 * rate) / rate
    host.set("echo", "heal")
    assert host.stats()["echo"].toxics == {}
    sock.sendall(b"after heal")
    assert recv_exactly(sock, 10) == b"after heal"
    sock.close()


def test_bandwidth_cap_is_shared_by_all_connections(host):
    rate, size = 100_000, 75_000  # two connections: 150 kB each way, about 1.5 s
    host.set("echo", "bandwidth", kbps=rate / 1000)
    socks = [connect(host, "echo", timeout=30) for _ in range(2)]
    payloads = [os.urandom(size) for _ in socks]
    t0 = time.monotonic()
    for sock, payload in zip(socks, payloads, strict=True):
        sock.sendall(payload)
    for sock, payload in zip(socks, payloads, strict=True):
        assert recv_exactly(sock, size) == payload
        sock.close()
    assert time.monotonic() - t0 >= (2 * size - 0.02 * rate) / rate


@pytest.mark.brokers
def test_blackhole_hangs_requests_until_heal(redis_proxy):
    proxies, endpoint = redis_proxy
    client = redis_client(endpoint, timeout=0.5)
    assert client.ping()
    proxies.set("redis", "blackhole")
    with pytest.raises(redis.TimeoutError):
        client.ping()
    proxies.set("redis", "heal")
    assert client.ping()  # redis-py dropped the timed-out connection: this is a new one
    client.close()


def test_blackhole_holds_open_and_new_connections_then_heal_delivers(host):
    old = connect(host, "echo", timeout=0.5)
    old.sendall(b"before")
    assert recv_exactly(old, 6) == b"before"
    host.set("echo", "blackhole")
    new = connect(host, "echo", timeout=0.5)  # accepted, but not forwarded
    for sock in (old, new):
        sock.sendall(b"during")
        with pytest.raises(TimeoutError):
            sock.recv(100)
    host.set("echo", "heal")
    for sock in (old, new):
        sock.settimeout(5)
        assert recv_exactly(sock, 6) == b"during"
        sock.close()


def test_blackhole_blocks_senders_and_heal_releases_the_backlog(host, servers):
    _, sink = servers
    sock = connect(host, "sink", timeout=1.0)
    host.set("sink", "blackhole")
    sent, chunk = 0, b"z" * 65536
    with pytest.raises(TimeoutError):
        while sent < 256 * 2**20:  # far more than any socket buffers hold
            sent += sock.send(chunk)
    assert sent < 256 * 2**20
    time.sleep(0.2)
    assert sink.received == 0
    host.set("sink", "heal")
    assert wait_until(lambda: sink.received == sent)
    sock.close()


@pytest.mark.brokers
def test_reset_breaks_connections_and_new_ones_work(redis_proxy):
    proxies, endpoint = redis_proxy
    client = redis_client(endpoint, timeout=10)
    assert client.ping()
    # In the middle of a request, like a consumer blocked waiting for messages: redis-py
    # quietly replaces an idle pooled connection that was reset, so that would show nothing.
    outcome: list[BaseException | object] = []

    def blocked_pop() -> None:
        try:
            outcome.append(client.blpop(["chaos-proxy-empty"], timeout=5))
        except BaseException as exc:
            outcome.append(exc)

    sent = proxies.stats()["redis"].bytes_up
    waiter = threading.Thread(target=blocked_pop)
    waiter.start()
    assert wait_until(lambda: proxies.stats()["redis"].bytes_up > sent)  # BLPOP is waiting
    proxies.set("redis", "reset")
    waiter.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], redis.ConnectionError), outcome
    assert client.ping()  # a new connection
    client.close()


def test_reset_sends_rst_to_both_sides(host, servers):
    echo, _ = servers
    sock = connect(host, "echo")
    sock.sendall(b"hello")
    assert recv_exactly(sock, 5) == b"hello"
    host.set("echo", "reset")
    with pytest.raises(ConnectionResetError):
        sock.recv(100)
    sock.close()
    assert wait_until(lambda: echo.endings == ["reset"])
    again = connect(host, "echo")
    again.sendall(b"again")
    assert recv_exactly(again, 5) == b"again"
    again.close()


def test_unreachable_upstream_resets_the_client():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        dead_port = placeholder.getsockname()[1]  # closed again: nothing listens there
    with ProxyHost.start({"nothing": (0, "127.0.0.1", dead_port)}) as proxies:
        # The reset may come before connect() even returns, or on the first read.
        with contextlib.suppress(ConnectionResetError), connect(proxies, "nothing") as sock:
            assert sock.recv(100) == b""
        assert proxies.stats()["nothing"].upstream_failures == 1


def test_bad_commands_get_clear_errors(host):
    with pytest.raises(LabError, match=r"unknown chaos proxy 'nope'.*echo, sink"):
        host.set("nope", "heal")
    with pytest.raises(LabError, match="unknown network fault 'kill'"):
        host.set("echo", "kill")
    with pytest.raises(LabError, match="takes no argument 'rate'"):
        host.set("echo", "bandwidth", rate=5)
    with pytest.raises(LabError, match="ms >= 0"):
        host.set("echo", "latency", ms=-1)
    host.set("echo", "heal")  # the host is still fine


# --- the host process ---------------------------------------------------------------


def test_taken_listen_port_is_a_clear_error():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(
            LabError, match=f"chaos proxy for redis cannot listen on 127.0.0.1:{port}"
        ):
            ProxyHost.start({"echo": (0, "127.0.0.1", 1), "redis": (port, "127.0.0.1", 1)})


def test_stop_ends_the_process_and_is_idempotent(servers):
    echo, _ = servers
    proxies = ProxyHost.start({"echo": (0, "127.0.0.1", echo.port)})
    sock = connect(proxies, "echo")  # an open connection does not keep it alive
    pid = proxies.pid
    assert psutil.pid_exists(pid)
    proxies.stop()
    assert _gone(pid, 0)
    proxies.stop()
    with pytest.raises(LabError, match="stopped"):
        proxies.stats()
    sock.close()


def test_process_exits_when_the_parent_pipe_closes(servers):
    echo, _ = servers
    proxies = ProxyHost.start({"echo": (0, "127.0.0.1", echo.port)})
    proxies._conn.close()  # what the kernel does to the pipe when the parent dies
    assert _gone(proxies.pid, 10)
    proxies.stop()


def test_process_exits_when_the_parent_is_killed(servers):
    echo, _ = servers
    script = textwrap.dedent(f"""
        import time
        from lab.faults.proxy_host import ProxyHost
        host = ProxyHost.start({{"echo": (0, "127.0.0.1", {echo.port})}})
        print(host.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        proxy_pid = int(parent.stdout.readline())
        # The forkserver goes too: it watches the same parent.
        spawned = [p.pid for p in psutil.Process(parent.pid).children(recursive=True)]
        assert proxy_pid in spawned or psutil.pid_exists(proxy_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _gone(proxy_pid, 10)
        assert all(_gone(pid, 10) for pid in spawned)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
