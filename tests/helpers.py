"""Shared by the tests: isolated lab settings, CLI runs, and finding leftover processes."""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from lab.runtimes.native.processes import MARK_STATE
from lab.settings import PORT_OFFSETS, PROXY_SHIFT, Settings

REPO = Path(__file__).resolve().parents[1]


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


def leftovers(settings: Settings) -> list[str]:
    """Processes the lab started for this state dir that are still alive, found three ways:
    the lab's environment mark, the state dir on the command line, a listener on the
    lab's ports (which catches an epmd or JVM whatever its environment says)."""
    ports = {settings.port_base + off for off in PORT_OFFSETS.values()}
    ports |= {p + PROXY_SHIFT for p in ports}
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
