"""A run cut short, by Ctrl-C or by kill -9 of the lab itself, through the real executable:
the summary speaks of the time that ran, and nothing of the lab is left running."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from lab.runtimes.native.processes import MARK_STATE
from tests.helpers import forkservers, isolated_lab, lab_env, port_block

pytestmark = pytest.mark.brokers


@pytest.fixture
def settings():
    with isolated_lab(port_base=port_block("interrupts")) as s:
        yield s


@pytest.fixture
def start_run(settings):
    """Starts `lab run` in a session of its own, as in a terminal of its own. A run the
    test did not end (it failed first) is killed with its whole group before the lab's
    leftovers are checked, so one failure is not reported twice."""
    started: list[subprocess.Popen] = []

    def start(out, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lab", "run", "quickstart", "--out", str(out), *args],
            env=lab_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)


def wait_for_producing(proc: subprocess.Popen, seconds: float) -> None:
    """Until the run has produced for about `seconds` (its workers exist by then)."""
    deadline = time.monotonic() + 120
    started = None
    while time.monotonic() < deadline:
        if started is None and len(forkservers(proc.pid)) >= 3:  # the server and two workers
            started = time.monotonic()
        if started is not None and time.monotonic() - started >= seconds:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("the run never started producing")


def test_ctrl_c_summarises_the_time_that_ran(start_run, tmp_path):
    proc = start_run(tmp_path, "--brokers", "redis,postgres", "--mode", "sequential")
    wait_for_producing(proc, 8)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err
    [path] = tmp_path.glob("*.json")
    redis, postgres = (
        json.loads(path.read_text())["brokers"][b]["summary"] for b in ("redis", "postgres")
    )
    # Rates over the seconds that ran, not over the recipe's 20.
    assert redis["produce_rate"] == pytest.approx(500, rel=0.05), redis
    assert redis["delivered"] == redis["acked"] > 0 and redis["lost"] == 0
    # The second broker never had its turn: nothing was measured, and it says so.
    assert postgres["produce_rate"] is None and postgres["e2e_latency_ms"]["count"] == 0
    [row] = [line for line in out.splitlines() if "send rate" in line]
    assert "- of -" in row and "of 500" in row, row


def test_kill_9_of_the_lab_leaves_no_worker_behind(settings, start_run, tmp_path):
    proc = start_run(tmp_path, "--brokers", "redis", "--duration", "60")
    wait_for_producing(proc, 2)
    lab = psutil.Process(proc.pid)
    ours = [p for p in lab.children(recursive=True) if not _is_broker(p, settings)]
    assert ours, "no worker, forkserver or proxy process found"
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    _, alive = psutil.wait_procs(ours, timeout=3)
    assert not alive, f"still running 3 s after the lab died: {[p.cmdline() for p in alive]}"
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def _is_broker(proc: psutil.Process, settings) -> bool:
    try:
        return proc.environ().get(MARK_STATE) == str(settings.state_dir)
    except psutil.Error:
        return False
