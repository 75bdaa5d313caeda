"""Shared by the tests: isolated lab settings, CLI runs, and finding leftover processes."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from lab.engine.session import Session
from lab.metrics import Snapshot
from lab.recipes import parse
from lab.results import RunResult
from lab.runtimes.native.processes import MARK_STATE
from lab.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


# Test labs that start brokers each get a block of ports of their own: block n starts at
# LAB_TEST_PORT_BASE + n * BLOCK (default 19000; a block spans PORT_BLOCK ports, proxies
# included). A second run of the suite on the same machine moves the base by 14000.
BLOCK = 2000
BLOCKS = ("fresh", "cli", "cleanup", "session", "plugin", "first-run", "interrupts")


def port_block(name: str) -> int:
    base = int(os.environ.get("LAB_TEST_PORT_BASE", "19000"))
    return base + BLOCK * BLOCKS.index(name)


def isolated_settings(port_base: int) -> Settings:
    """A state dir and port block of its own, so tests never touch a user's lab.

    The state dir lives under /tmp with mode 0755: when the tests run as root, PostgreSQL
    runs as `postgres` and must be able to enter it (pytest's tmp_path is 0700).
    """
    state = Path(tempfile.mkdtemp(prefix=f"broker-lab-test-{port_base}-", dir="/tmp"))
    state.chmod(0o755)
    return Settings(state_dir=state, port_base=port_base, cache_dir=Settings.from_env().cache_dir)


@contextmanager
def isolated_lab(port_base: int) -> Iterator[Settings]:
    """Settings of an isolated lab; afterwards every broker is down, nothing is left
    running, and the state dir is gone."""
    from lab.runtimes.native import NativeRuntime

    settings = isolated_settings(port_base)
    try:
        yield settings
    finally:
        NativeRuntime(settings).down([])
        left = leftovers(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
        assert not left, f"processes left behind: {left}"


def lab_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "LAB_STATE_DIR": str(settings.state_dir),
        "LAB_PORT_BASE": str(settings.port_base),
        "LAB_CACHE_DIR": str(settings.cache_dir),
        **extra,
    }


def run_lab(settings: Settings, *args: str, timeout: float = 120, **env: str):
    """`lab ARGS` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        env=lab_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def forkservers(pid: int) -> list[psutil.Process]:
    """The multiprocessing forkservers under process `pid` and the workers they forked
    (their command line names the forkserver); a process that is gone, or a zombie not
    reaped yet, is left out."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for child in children:
        try:
            if "forkserver" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def leftovers(settings: Settings) -> list[str]:
    """Processes the lab started for this state dir that are still alive, found three ways:
    the lab's environment mark, the state dir on the command line, a listener on the
    lab's ports (which catches an epmd or JVM whatever its environment says)."""
    ports = settings.lab_ports()
    listeners = set()
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in ports:
            listeners.add(conn.pid)
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        if proc.pid == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            mine = proc.environ().get(MARK_STATE) == str(settings.state_dir)
        except psutil.Error:
            mine = False
        cmdline = " ".join(proc.info["cmdline"] or [])
        if mine or str(settings.state_dir) in cmdline or proc.pid in listeners:
            found.append(f"{proc.info['name']} (pid {proc.pid})")
    return found


class Tmux:
    """One tmux server of our own (unique socket), killed at the end whatever happens."""

    def __init__(self, width: int, height: int) -> None:
        assert shutil.which("tmux"), "tmux is not installed: make setup (or apt-get install tmux)"
        self.socket = f"lab-tui-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.size = (width, height)

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # An explicit environment, without COLUMNS/LINES: under pytest the C-level environ
        # has COLUMNS=80 LINES=24 (os.environ does not), and the app would believe them
        # rather than the pane's real size.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=check,
            env=env,
        )

    def start(self, command: str) -> None:
        width, height = self.size
        self.tmux("new-session", "-d", "-s", "lab", "-x", str(width), "-y", str(height), command)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "lab", check=False).stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "lab", key)

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        """The first screen that shows every one of `texts` (a frame can be half drawn)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts!r} never all appeared; the screen:\n{screen}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", "lab", check=False).returncode == 0

    def wait_until_gone(self, timeout: float) -> None:
        """Until the program in the pane has exited (and tmux with it)."""
        deadline = time.monotonic() + timeout
        while self.alive():
            assert time.monotonic() < deadline, f"it did not quit:\n{self.screen()}"
            time.sleep(0.2)

    def kill(self) -> None:
        self.tmux("kill-server", check=False)


def run_session(session_lab, recipe: dict, brokers: list[str]) -> tuple[RunResult, list[Snapshot]]:
    """One parallel run of `recipe` on `brokers` (brought up on first use), and the
    Snapshots it published on the way."""
    for broker in brokers:
        session_lab.endpoint(broker)
    session = Session(session_lab.runtime, stop_started_brokers=False)
    try:
        session.start(parse(recipe), brokers)
        snaps = list(session.snapshots())
        result = session.wait(timeout=300)
    finally:
        session.close()
    assert result is not None
    return result, snaps


def run_one(
    session_lab, broker: str, recipe_data: dict, faults: tuple = (), timeout: float = 180
) -> tuple[RunResult, list[Snapshot]]:
    """A run on one broker with `faults`; no worker may outlive it, and the broker is
    brought up again for the next test, whatever the faults left it in."""
    session_lab.endpoint(broker)
    recipe = parse({"name": f"{broker}-test", "warmup": "1s", **recipe_data})
    session = Session(session_lab.runtime, stop_started_brokers=False)
    try:
        session.start(recipe, [broker], "parallel", faults)
        snapshots = list(session.snapshots())
        result = session.wait(timeout=timeout)
    finally:
        session.close()
    assert result is not None
    assert not [w for r in session.runs for w in r.workers if w.alive()], "a worker outlived it"
    session_lab.runtime.up([broker])
    return result, snapshots
