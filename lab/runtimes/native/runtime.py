"""The native runtime: the brokers' own binaries on this host, one private instance each.

Layout under the state dir, per broker:  <state>/<broker>/
    data/         the broker's data directory
    broker.log    stdout and stderr of the broker (previous start: broker.log.1)
    pids.json     its processes, start time and whether it has been healthy
    killed        present after a kill (by the lab, or a crash): state `killed`
    secret        generated password (0600)
"""

import contextlib
import fcntl
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

import psutil

from lab import brokers as registry
from lab.endpoints import Endpoint
from lab.errors import LabError
from lab.runtimes.base import Progress, start_in_parallel
from lab.runtimes.model import BrokerState, BrokerStatus, ResourceStats
from lab.runtimes.native import processes as ps
from lab.runtimes.native.spec import NativeBroker
from lab.settings import Settings


class Cancelled(Exception):
    """Start-up was interrupted (Ctrl-C); what was started has been stopped."""


class NativeRuntime:
    name = "native"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.brokers = {name: p.native(settings) for name, p in registry.plugins().items()}
        self._versions: dict[str, str | None] = {}
        self._watched: dict[str, tuple[float, list[psutil.Process]]] = {}

    # --- lifecycle ------------------------------------------------------------------

    def up(self, names: Sequence[str], progress: Progress | None = None) -> list[BrokerStatus]:
        names = registry.check(names, registry.default_names())
        self._ensure_state_dir()
        problems = [m for m in (self.brokers[n].missing() for n in names) if m]
        if problems:
            raise LabError("; ".join(problems))
        say = progress or (lambda _broker, _msg: None)

        def interrupted(started: list[str]) -> None:
            # Brokers still booting: no data worth a graceful stop, and the user is waiting.
            for name in started:
                with self._lock(name):
                    self._clear(name)

        start_in_parallel(names, partial(self._up_one, say=say), interrupted)
        return self.status(names, sample_seconds=0)

    def down(self, names: Sequence[str]) -> None:
        names = registry.check(names)
        if not self.settings.state_dir.exists():
            return
        with ThreadPoolExecutor(len(names), thread_name_prefix="lab-down") as pool:
            list(pool.map(self._down_one, names))
        if set(names) == set(self.brokers):
            # Anything else that carries the lab's mark for this state dir (a helper a
            # broker forked, a process of a lab that was killed mid-start) goes too.
            ps.kill_and_wait(ps.marked(self.settings.state_dir))

    def restart(self, broker: str, progress: Progress | None = None) -> BrokerStatus:
        (name,) = registry.check([broker])
        self._down_one(name)
        return self.up([name], progress)[0]

    def kill(self, broker: str) -> None:
        (name,) = registry.check([broker])
        procs = self._require_running(name)
        ps.kill_and_wait(procs)
        self._mark_killed(name, "killed by the lab (SIGKILL)")

    def pause(self, broker: str) -> None:
        (name,) = registry.check([broker])
        # Every process of the broker stops: PostgreSQL's backends serve open connections
        # on their own, so stopping only the postmaster would not freeze it.
        ps.send(self._require_running(name), ps.signal.SIGSTOP)

    def resume(self, broker: str) -> None:
        (name,) = registry.check([broker])
        ps.send(self._require_running(name), ps.signal.SIGCONT)

    # --- observation ----------------------------------------------------------------

    def status(self, names: Sequence[str], sample_seconds: float = 0.5) -> list[BrokerStatus]:
        names = registry.check(names)
        with ThreadPoolExecutor(len(names), thread_name_prefix="lab-status") as pool:
            states = dict(zip(names, pool.map(self._inspect, names), strict=True))
        running = {n: self._procs(n) for n in names if states[n][1]}
        all_procs = [p for procs in running.values() for p in procs]
        if all_procs and sample_seconds > 0:
            ps.start_cpu_window(all_procs, sample_seconds)
        result = []
        for name in names:
            state, main, detail = states[name]
            usage = ps.running_stats(running[name]) if name in running else None
            result.append(
                BrokerStatus(
                    broker=name,
                    runtime=self.name,
                    state=state,
                    endpoint=self.brokers[name].endpoint().redacted(),
                    pid=main.pid if main else None,
                    cpu_percent=usage.cpu_percent if usage and sample_seconds > 0 else None,
                    rss_bytes=usage.rss_bytes if usage else None,
                    version=self._version(name),
                    detail=detail,
                )
            )
        return result

    def health(self, broker: str) -> bool:
        (name,) = registry.check([broker])
        try:
            registry.probe(self.brokers[name].endpoint())
            return True
        except Exception:
            return False

    def stats(self, broker: str) -> ResourceStats | None:
        """CPU since the previous call for this broker; cheap enough for every Snapshot."""
        (name,) = registry.check([broker])
        seen, procs = self._watched.get(name, (0.0, []))
        if time.monotonic() - seen > 5 or not all(p.is_running() for p in procs):
            procs = self._procs(name)
            for p in procs:
                with suppress(psutil.Error):
                    p.cpu_percent(None)
            self._watched[name] = (time.monotonic(), procs)
        return ps.running_stats(procs) if procs else None

    def logs(self, broker: str, lines: int = 100) -> str:
        (name,) = registry.check([broker])
        path = self.brokers[name].log_path
        if not path.exists():
            return f"(no log yet: {name} has not been started in {self.settings.state_dir})"
        return "\n".join(_tail(path, lines))

    def endpoint(self, broker: str) -> Endpoint:
        (name,) = registry.check([broker])
        return self.brokers[name].endpoint()

    def proxy_route(self, broker: str) -> tuple[int, str, int]:
        (name,) = registry.check([broker])
        return self.settings.proxy_route(name)

    # --- internals ------------------------------------------------------------------

    def _procs(self, name: str) -> list[psutil.Process]:
        """Every live process of the broker: its pid file's processes and their children,
        plus any process carrying its mark (Redis and PostgreSQL children rewrite their
        process title over the environment, so the marks alone do not find them)."""
        data = self._pidfile(name).load()
        tracked = [ps.process_of(t) for t in (data["processes"] if data else [])]
        return ps.with_children(
            [p for p in tracked if p] + ps.marked(self.settings.state_dir, name)
        )

    def _pidfile(self, name: str) -> ps.PidFile:
        return ps.PidFile(self.brokers[name].dir / "pids.json")

    def _version(self, name: str) -> str | None:
        if name not in self._versions:
            self._versions[name] = self.brokers[name].version()
        return self._versions[name]

    def _inspect(
        self, name: str, locked: bool = False
    ) -> tuple[BrokerState, psutil.Process | None, str]:
        """State of a broker from its pid file, its processes and a protocol probe.
        `locked`: the caller holds the broker's lock (it is starting or stopping it)."""
        broker = self.brokers[name]
        killed = broker.dir / "killed"
        data = self._pidfile(name).load()
        if data is None or not data["processes"]:
            if killed.exists():
                return BrokerState.KILLED, None, killed.read_text().strip()
            return BrokerState.STOPPED, None, ""
        main = ps.process_of(data["processes"][-1])
        if main is None or not data.get("spawned"):
            return self._settle(name, locked)
        if ps.is_stopped(main):
            return BrokerState.PAUSED, main, "SIGSTOP"
        try:
            registry.probe(broker.endpoint())
        except Exception as exc:
            age = time.time() - data.get("started_at", 0)
            if not data.get("healthy") and age < broker.start_timeout:
                return BrokerState.STARTING, main, f"up {age:.0f}s"
            return BrokerState.UNHEALTHY, main, _one_line(exc)
        return BrokerState.HEALTHY, main, ""

    def _settle(self, name: str, locked: bool) -> tuple[BrokerState, None, str]:
        """The pid file is not the whole truth: a start that has not spawned everything
        yet, or a broker process that is gone. If a lab command holds the broker's lock
        (in another thread or terminal), that is its work in progress. Otherwise the lab
        that started it died half-way, or the broker died on its own: clean up what is left
        and say which."""
        with contextlib.ExitStack() as stack:
            if not locked and not stack.enter_context(self._lock(name, wait=False)):
                return BrokerState.STARTING, None, "a lab command is starting or stopping it"
            data = self._pidfile(name).load()
            if data is None or not data["processes"]:
                return BrokerState.STOPPED, None, ""
            ps.kill_and_wait(self._procs(name))
            if not data.get("spawned"):
                self._pidfile(name).remove()
                return BrokerState.STOPPED, None, "cleaned up a start that was interrupted"
            reason = f"exited unexpectedly; see `lab logs {name}`"
            self._mark_killed(name, reason)
            return BrokerState.KILLED, None, reason

    def _up_one(
        self, name: str, cancel: threading.Event, started: list[str], say: Progress
    ) -> None:
        broker = self.brokers[name]
        with self._lock(name):
            state, _, detail = self._inspect(name, locked=True)
            if state is BrokerState.HEALTHY:
                say(name, "already running")
                return
            if state is BrokerState.PAUSED:
                say(name, "paused: resuming")
                ps.send(self._procs(name), ps.signal.SIGCONT)
                self._wait_healthy(name, cancel, say, time.monotonic())
                return
            if state is BrokerState.STARTING:
                say(name, "already starting: waiting")
                self._wait_healthy(name, cancel, say, time.monotonic())
                return
            if state is BrokerState.UNHEALTHY:
                say(name, f"unhealthy ({detail}): restarting")
                self._stop(name)
            self._clear(name)
            self._check_ports(name)
            self._rotate_log(broker)
            say(name, "preparing")
            broker.prepare()
            say(name, "starting")
            t0 = time.monotonic()
            started.append(name)
            tracked: list[ps.Tracked] = []
            for spec in broker.processes():
                tracked.append(ps.spawn(spec, broker.log_path, self.settings.state_dir, name))
                self._pidfile(name).save(tracked, started_at=time.time(), healthy=False)
                if spec.ready_port:
                    # A helper (epmd) must listen before the broker that registers with it.
                    _wait_port(spec.ready_port, 5)
            self._pidfile(name).mark(spawned=True)
            try:
                self._wait_healthy(name, cancel, say, t0)
            except Cancelled:
                raise
            except LabError:
                self._stop(name)
                raise

    def _wait_healthy(self, name: str, cancel: threading.Event, say: Progress, t0: float) -> None:
        broker = self.brokers[name]
        pidfile = self._pidfile(name)
        deadline = t0 + broker.start_timeout
        while True:
            if cancel.is_set():
                raise Cancelled(name)
            data = pidfile.load()
            main = ps.process_of(data["processes"][-1]) if data and data["processes"] else None
            if main is None:
                raise LabError(
                    f"{name} exited while starting: {_last_words(broker.log_path)} "
                    f"(full log: lab logs {name})"
                )
            try:
                registry.probe(broker.endpoint(), timeout=1.0)
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"{name} did not answer within {broker.start_timeout:.0f}s "
                        f"({_one_line(exc)}); last log line: {_last_words(broker.log_path)}"
                    ) from None
                time.sleep(0.25)
                continue
            pidfile.mark(healthy=True)
            say(name, f"healthy in {time.monotonic() - t0:.1f}s")
            return

    def _down_one(self, name: str) -> None:
        with self._lock(name):
            self._stop(name)
            self._clear(name)

    def _stop(self, name: str) -> None:
        """Graceful stop in reverse start order, SIGKILL for what does not listen."""
        broker = self.brokers[name]
        data = self._pidfile(name).load()
        tracked = data["processes"] if data else []
        everything = self._procs(name)
        for entry in reversed(tracked):
            proc = ps.process_of(entry)
            if proc is None:
                continue
            is_main = entry is tracked[-1]
            ps.send([proc], ps.signal.SIGCONT)
            ps.send([proc], broker.stop_signal if is_main else ps.signal.SIGTERM)
            left = ps.wait_gone([proc], broker.stop_timeout if is_main else 5)
            ps.kill_and_wait(left)
        ps.kill_and_wait(everything)  # children the broker did not take down with it
        self._pidfile(name).remove()

    def _clear(self, name: str) -> None:
        """No process, pid file or killed mark of this broker is left."""
        ps.kill_and_wait(self._procs(name))
        self._pidfile(name).remove()
        (self.brokers[name].dir / "killed").unlink(missing_ok=True)
        self._watched.pop(name, None)

    def _mark_killed(self, name: str, reason: str) -> None:
        self._pidfile(name).remove()
        (self.brokers[name].dir / "killed").write_text(reason + "\n")
        self._watched.pop(name, None)

    def _require_running(self, name: str) -> list[psutil.Process]:
        procs = self._procs(name)
        if not procs:
            raise LabError(f"{name} is not running: start it with `lab up {name}`")
        return procs

    def _check_ports(self, name: str) -> None:
        for port_name in self.brokers[name].port_names:
            port = self.settings.port(port_name)
            if not _port_free(port):
                owner = ps.port_owner(port) or "another process"
                raise LabError(
                    f"port {port} ({port_name}) is already in use by {owner}: stop it, "
                    f"or move the lab's ports with LAB_PORT_BASE (now {self.settings.port_base})"
                )

    def _ensure_state_dir(self) -> None:
        state = self.settings.state_dir
        try:
            state.mkdir(parents=True, exist_ok=True)
            # A file of its own name: `up`s in other threads (a restart fault on each
            # broker) probe the same dir at the same moment.
            with tempfile.TemporaryFile(dir=state):
                pass
            for broker in self.brokers.values():
                broker.dir.mkdir(exist_ok=True)
            if os.geteuid() == 0:
                state.chmod(0o755)  # PostgreSQL, as `postgres`, must pass through it
        except OSError as exc:
            raise LabError(
                f"the state dir {state} is not writable ({exc.strerror}): "
                "set LAB_STATE_DIR to a directory you can write"
            ) from None

    @contextmanager
    def _lock(self, name: str, wait: bool = True) -> Iterator[bool]:
        """One lab command at a time per broker, across threads and processes. Yields
        whether the lock is held (always, when waiting)."""
        path = self.brokers[name].dir / "lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @staticmethod
    def _rotate_log(broker: NativeBroker) -> None:
        if broker.log_path.exists():
            broker.log_path.replace(broker.log_path.with_suffix(".log.1"))


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)


def _tail(path: Path, lines: int) -> list[str]:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 256 * 1024))
        text = fh.read().decode(errors="replace")
    return text.splitlines()[-lines:]


def _last_words(path: Path) -> str:
    meaningful = [line for line in _tail(path, 40) if line.strip()]
    return meaningful[-1].strip()[:300] if meaningful else "(empty log)"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
