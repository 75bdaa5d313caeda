"""Starting, finding, signalling and measuring the processes of native brokers.

Every process the lab starts carries two environment variables, inherited by whatever
it forks (PostgreSQL backends, Erlang's helpers, an epmd that Erlang spawns):

    BROKER_LAB_STATE=<state dir>   BROKER_LAB_BROKER=<broker>

Pid files say which processes are the broker's; the marks find everything else, so a
lab that was killed with -9 halfway through `up` still leaves nothing behind after the
next `lab down`.
"""

import contextlib
import json
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from lab.runtimes.model import ResourceStats

MARK_STATE = "BROKER_LAB_STATE"
MARK_BROKER = "BROKER_LAB_BROKER"

# Popen objects of children started by this process, kept so they are reaped (no zombies
# in a long-lived TUI or test session) and never garbage-collected while running.
_children: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None  # drop to this user (PostgreSQL refuses to run as root)
    cwd: Path | None = None
    ready_port: int | None = None  # a helper that must listen before the next process starts


@dataclass(frozen=True)
class Tracked:
    name: str
    pid: int
    create_time: float


def spawn(spec: ProcessSpec, log_path: Path, state_dir: Path, broker: str) -> Tracked:
    env = {**os.environ, **spec.env, MARK_STATE: str(state_dir), MARK_BROKER: broker}
    kwargs: dict = {}
    if spec.user and os.geteuid() == 0:
        account = pwd.getpwnam(spec.user)
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        env["HOME"] = account.pw_dir
        env["USER"] = env["LOGNAME"] = spec.user
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=spec.cwd,
            # Its own session: Ctrl-C in the lab's terminal does not reach the broker
            # directly; the lab decides what to stop.
            start_new_session=True,
            **kwargs,
        )
    _children[proc.pid] = proc
    return Tracked(spec.name, proc.pid, psutil.Process(proc.pid).create_time())


def reap() -> None:
    """Collect the exit status of children that ended, so they do not linger as zombies."""
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            _children.pop(pid, None)  # threads reap concurrently (parallel up/down)


def process_of(tracked: Tracked) -> psutil.Process | None:
    """The live process behind a pid file entry, or None (gone, zombie, or pid reused)."""
    reap()
    try:
        proc = psutil.Process(tracked.pid)
        if abs(proc.create_time() - tracked.create_time) > 0.01:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def marked(state_dir: Path, broker: str | None = None) -> list[psutil.Process]:
    """Every live process the lab started for this state dir (and broker, if given)."""
    reap()
    found = []
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            env = proc.environ()
            if env.get(MARK_STATE) != str(state_dir):
                continue
            if broker and env.get(MARK_BROKER) != broker:
                continue
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def with_children(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The processes and all their descendants, each once."""
    found: dict[int, psutil.Process] = {}
    for proc in procs:
        found.setdefault(proc.pid, proc)
        try:
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
        except psutil.Error:
            continue
    return list(found.values())


def send(procs: Iterable[psutil.Process], sig: signal.Signals) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def kill_and_wait(procs: list[psutil.Process], timeout: float = 5.0) -> None:
    send(procs, signal.SIGCONT)  # a stopped process cannot die until it is continued
    send(procs, signal.SIGKILL)
    wait_gone(procs, timeout)


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until the processes exit; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        reap()
        alive = [p for p in alive if _running(p)]
        if alive:
            time.sleep(0.05)
    return alive


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def is_stopped(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_STOPPED
    except psutil.Error:
        return False


def start_cpu_window(procs: list[psutil.Process], seconds: float) -> None:
    """Start measuring CPU on these Process objects and wait `seconds`: the next
    running_stats() on them (or on any subset) covers that window."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
    time.sleep(seconds)


def running_stats(procs: list[psutil.Process]) -> ResourceStats:
    """CPU % since the previous call on the same Process objects, and summed RSS."""
    cpu, rss = 0.0, 0
    for proc in procs:
        try:
            with proc.oneshot():
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
        except psutil.Error:
            continue
    return ResourceStats(cpu_percent=round(cpu, 1), rss_bytes=rss)


def port_owner(port: int) -> str | None:
    """'name (pid N)' of the process listening on a loopback TCP port, if any."""
    try:
        conns = psutil.net_connections("tcp")
    except psutil.Error:
        conns = []
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid:
                try:
                    return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
                except psutil.Error:
                    pass
            return "another process"
    return None


class PidFile:
    """<broker dir>/pids.json: the broker's processes plus its lifecycle marks."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        data["processes"] = [Tracked(**p) for p in data.get("processes", [])]
        return data

    def save(self, processes: list[Tracked], **marks: object) -> None:
        data = self.load() or {}
        data.update(marks)
        data["processes"] = [asdict(p) for p in processes]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.path)

    def mark(self, **marks: object) -> None:
        data = self.load()
        if data is not None:
            self.save(data["processes"], **marks)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
