"""Every command of the lab as the FIRST command on a machine where the lab never ran: no
state dir, no broker running. Through the real executable, as a newcomer meets it."""

import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from lab.runtimes.native import NativeRuntime
from lab.settings import Settings
from tests.helpers import Tmux, leftovers, port_block, run_lab
from tests.tui.support import RECORDED
from tui.screens.dead_letters import live_source

pytestmark = pytest.mark.brokers


@pytest.fixture
def fresh():
    """Settings whose state dir does not exist yet (its parent is open to `postgres`)."""
    parent = Path(tempfile.mkdtemp(prefix="broker-lab-first-", dir="/tmp"))
    parent.chmod(0o755)
    settings = Settings(
        state_dir=parent / "state",
        port_base=port_block("first-run"),
        cache_dir=Settings.from_env().cache_dir,
    )
    assert not settings.state_dir.exists()
    try:
        yield settings
    finally:
        NativeRuntime(settings).down([])
        left = leftovers(settings)
        shutil.rmtree(parent, ignore_errors=True)
        assert not left, f"processes left behind: {left}"


def no_traceback(done) -> None:
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr


def states(settings: Settings) -> dict[str, str]:
    done = run_lab(settings, "status", "--json")
    return {row["broker"]: row["state"] for row in json.loads(done.stdout)}


@pytest.mark.parametrize(
    "args", [("status",), ("doctor",), ("logs", "redis"), ("down",)], ids=lambda a: a[0]
)
def test_status_doctor_logs_and_down_first(fresh, args):
    """Each its own fresh state dir: none may rely on another having created it."""
    done = run_lab(fresh, *args)
    no_traceback(done)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert set(states(fresh).values()) == {"stopped"}


def test_up_first(fresh):
    done = run_lab(fresh, "up", "redis")
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    assert states(fresh)["redis"] == "healthy"


def test_run_first_starts_and_stops_what_it_needs(fresh, tmp_path):
    done = run_lab(
        fresh, "run", "quickstart", "--brokers", "redis", "--duration", "4", "--out", str(tmp_path)
    )
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    [path] = tmp_path.glob("*.json")
    summary = json.loads(path.read_text())["brokers"]["redis"]["summary"]
    assert summary["acked"] == summary["delivered"] > 0 and summary["lost"] == 0
    assert states(fresh)["redis"] == "stopped"


def test_dlq_first_says_there_is_nothing_yet(fresh):
    done = run_lab(fresh, "dlq", "redis")
    no_traceback(done)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "lab: error: no run has kept dead letters on redis: run one with poison messages"
        " (e.g. lab run poison-pill)"
    ]


def test_tui_replay_first(fresh, tmp_path):
    term = Tmux(120, 40)
    env = " ".join(
        f"{k}={shlex.quote(v)}"
        for k, v in {
            "LAB_STATE_DIR": str(fresh.state_dir),
            "LAB_PORT_BASE": str(fresh.port_base),
            "LAB_TUI_CONFIG": str(tmp_path / "none.toml"),
        }.items()
    )
    done = shlex.quote(str(tmp_path / "exit-code"))
    lab = f"{shlex.quote(sys.executable)} -m lab tui --replay {shlex.quote(str(RECORDED))}"
    try:
        term.start(f"cd {shlex.quote(str(tmp_path))} && {env} {lab}; echo $? > {done}")
        term.wait_for("REPLAY")
        term.keys("q")
        term.wait_until_gone(20)
    finally:
        term.kill()
    assert (tmp_path / "exit-code").read_text().strip() == "0"


def test_dead_letters_after_a_run_bring_their_broker_up(fresh, tmp_path):
    """`lab run poison-pill`, then `lab dlq`, as the run's own words suggest: the run stopped
    the broker it started; lab dlq brings it up, says so, and stops it again."""
    done = run_lab(
        fresh,
        "run",
        "poison-pill",
        "--brokers",
        "kafka",
        "--duration",
        "5",
        "--out",
        str(tmp_path),
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "lab dlq kafka --run" in done.stdout
    assert states(fresh)["kafka"] == "stopped"

    listed = run_lab(fresh, "dlq", "kafka", timeout=180)
    no_traceback(listed)
    assert listed.returncode == 0, listed.stderr
    assert "kafka: healthy in" in listed.stderr and "kafka: stopping it again" in listed.stderr
    assert "dead letters of run" in listed.stdout and "redrive: lab dlq kafka" in listed.stdout
    assert states(fresh)["kafka"] == "stopped"

    # The TUI's dead-letter screen on the finished run reads them the same way, with the
    # same progress lines.
    [results] = tmp_path.glob("*.json")
    run_id = json.loads(results.read_text())["run_id"]
    said: list[str] = []
    source = live_source(NativeRuntime(fresh), "kafka", run_id, ended=True)
    letters = source.read(500, said.append)
    assert letters and all(letter.attempts >= 1 for letter in letters), letters
    assert any(line.startswith("kafka: healthy in") for line in said), said
    assert said[-1] == "kafka: stopping it again", said
    assert states(fresh)["kafka"] == "stopped"

    moved = run_lab(fresh, "dlq", "kafka", "--redrive", timeout=180)
    assert moved.returncode == 0, moved.stderr
    assert "dead letters of run" in moved.stdout and "sent back to its queue" in moved.stdout
    assert states(fresh)["kafka"] == "stopped"
