"""The chaos proxies of a lab, in one child process with one asyncio loop.

    host = ProxyHost.start({"redis": (18379, "127.0.0.1", 17379)})
    host.set("redis", "latency", ms=200, jitter=50)
    host.stats()["redis"].bytes_up
    host.stop()

A process of its own, so proxying never competes with the engine's threads for the GIL.
The parent talks to it over a Pipe, one command and one reply at a time. The child
exits when that pipe reaches EOF, which is also what happens when the parent dies
however it dies, so a proxy is never left behind holding the lab's ports.
"""

import asyncio
import atexit
import contextlib
import os
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from lab.errors import LabError, unknown_choice
from lab.faults.proxy import ChaosProxy, ProxyStats
from lab.forkserver import context

Routes = dict[str, tuple[int, str, int]]  # name -> (listen port, upstream host, upstream port)
LISTEN_HOST = "127.0.0.1"
REPLY_TIMEOUT = 10.0


class ProxyHost:
    """The parent's handle on the proxy process. Thread-safe; stop() is idempotent."""

    def __init__(self, process: BaseProcess, conn: Connection, ports: dict[str, int]) -> None:
        self._process = process
        self._conn = conn
        self.ports = ports  # name -> bound listen port
        self._lock = threading.Lock()
        self._stopped = False
        self._owner = os.getpid()
        self._sent = 0  # request number: a reply that comes after its timeout is skipped

    @classmethod
    def start(
        cls, routes: Routes, log_path: Path | None = None, timeout: float = 30.0
    ) -> "ProxyHost":
        """Start the process; return once every listener is bound (port 0: any free port).

        log_path receives the child's stdout/stderr, so nothing it prints lands on a
        terminal the TUI owns.
        """

        ctx = context()
        conn, child_conn = ctx.Pipe()
        process = ctx.Process(
            target=_host_main,
            args=(dict(routes), child_conn, str(log_path) if log_path else None),
            name="lab-chaos-proxies",
            daemon=True,
        )
        process.start()
        # Only the child holds its end now, so each side sees EOF when the other is gone.
        child_conn.close()
        host = cls(process, conn, {})
        atexit.register(host.stop)
        try:
            reply = _receive(conn, timeout, "starting")
        except BaseException:  # Ctrl-C included: no proxy outlives a failed start
            host.stop()
            raise
        if reply[0] == "error":
            host.stop()
            _, name, port, reason = reply
            raise LabError(_bind_error(name, port, reason))
        host.ports = reply[1]
        return host

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.is_alive()

    def set(self, name: str, action: str, **params: float) -> None:
        """Apply a network fault (latency, bandwidth, blackhole, reset, heal) to one proxy."""
        self._request("set", name, action, params)

    def stats(self) -> dict[str, ProxyStats]:
        return self._request("stats")

    def stop(self, timeout: float = 5.0) -> None:
        """Close every listener and connection and end the process (SIGKILL if it lingers).

        Safe to call twice, from an atexit handler, or after the process died.
        """
        with self._lock:  # a request of another thread finishes first: one message at a time
            if self._stopped or os.getpid() != self._owner:
                return
            self._stopped = True
            with contextlib.suppress(OSError, ValueError):
                self._conn.send((0, "stop"))
        process = self._process
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(5)
        self._conn.close()
        atexit.unregister(self.stop)

    def __enter__(self) -> "ProxyHost":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _request(self, *message: object):  # the reply's type depends on the command
        with self._lock:
            if self._stopped:
                raise LabError("the chaos proxies are stopped")
            self._sent += 1
            try:
                self._conn.send((self._sent, *message))
            except OSError:
                raise LabError("the chaos proxy process has exited") from None
            reply = _receive(self._conn, REPLY_TIMEOUT, str(message[0]))
            while reply[0] != self._sent:
                reply = _receive(self._conn, REPLY_TIMEOUT, str(message[0]))
        _, status, value = reply
        if status == "error":
            raise LabError(value)
        return value


def _receive(conn: Connection, timeout: float, doing: str) -> tuple:
    try:
        if not conn.poll(timeout):
            raise LabError(f"the chaos proxy process did not answer ({doing}) in {timeout:g}s")
        return conn.recv()
    except (EOFError, OSError):
        raise LabError(f"the chaos proxy process exited ({doing})") from None


def _bind_error(name: str, port: int, reason: str) -> str:
    from lab.runtimes.native.processes import port_owner

    owner = port_owner(port)
    used = f" (it is used by {owner})" if owner else ""
    return (
        f"the chaos proxy for {name} cannot listen on {LISTEN_HOST}:{port}: {reason}{used}; "
        "stop whatever holds the port or move the lab with LAB_PORT_BASE"
    )


# --- the child process --------------------------------------------------------------


def _host_main(routes: Routes, conn: Connection, log_path: str | None) -> None:
    # Ctrl-C in the lab's terminal reaches the whole process group; the parent decides
    # when the proxies stop, since clients still drain through them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    asyncio.run(_serve(routes, conn))


async def _serve(routes: Routes, conn: Connection) -> None:
    proxies: dict[str, ChaosProxy] = {}
    for name, (port, host, upstream_port) in routes.items():
        proxy = ChaosProxy((LISTEN_HOST, port), (host, upstream_port), name=name)
        try:
            await proxy.start()
        except OSError as exc:
            for started in proxies.values():
                await started.close()
            conn.send(("error", name, port, exc.strerror or str(exc)))
            return
        proxies[name] = proxy
    conn.send(("ready", {name: proxy.port for name, proxy in proxies.items()}))

    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    loop.add_reader(conn.fileno(), _on_command, proxies, conn, finished)
    await finished
    loop.remove_reader(conn.fileno())
    for proxy in proxies.values():
        await proxy.close()


def _on_command(proxies: dict[str, ChaosProxy], conn: Connection, finished: asyncio.Future) -> None:
    try:
        while not finished.done() and conn.poll():
            number, command, *args = conn.recv()
            if command == "stop":
                finished.set_result(None)
                return
            try:
                conn.send((number, "ok", _execute(proxies, command, args)))
            except Exception as exc:  # any failure is the caller's answer, never our exit
                conn.send((number, "error", str(exc)))
    except (EOFError, OSError):
        # The parent is gone (or closed its end): nobody can stop us, so stop now.
        if not finished.done():
            finished.set_result(None)


def _execute(proxies: dict[str, ChaosProxy], command: str, args: list) -> object:
    if command == "stats":
        return {name: proxy.stats() for name, proxy in proxies.items()}
    if command == "set":
        name, action, params = args
        if name not in proxies:
            raise unknown_choice("chaos proxy", name, proxies)
        proxies[name].apply(action, **params)
        return None
    raise LabError(f"unknown chaos proxy command '{command}'")
