"""`lab tui` in a real terminal (tmux) at 80x24 and 200x50: keys in, the screen read back
with capture-pane, as a user would see it. Replays a recorded run, so no broker is needed."""

import shlex
import sys

import pytest

from tests.helpers import Tmux
from tests.tui.support import RECORDED, recorded


@pytest.fixture
def lab_tui(tmp_path):
    sessions: list[Tmux] = []

    def launch(width: int, height: int) -> Tmux:
        term = Tmux(width, height)
        sessions.append(term)
        lab = f"{shlex.quote(sys.executable)} -m lab tui --replay {shlex.quote(str(RECORDED))}"
        env = f"LAB_TUI_CONFIG={shlex.quote(str(tmp_path / 'none.toml'))}"
        done = shlex.quote(str(tmp_path / "exit-code"))
        term.start(f"cd {shlex.quote(str(tmp_path))} && {env} {lab}; echo $? > {done}")
        return term

    yield launch
    for term in sessions:
        term.kill()


def test_at_80x24_columns_scroll_keys_work_and_export_writes(lab_tui, tmp_path):
    term = lab_tui(80, 24)
    screen = term.wait_for("? Help", "1 kafka", "REPLAY")
    assert "2 rabbitmq" in screen and "3 redis" not in screen  # two columns fit
    assert "◀ 1-2 of 4 ▶" in screen and "REPLAY" in screen
    footer = screen.rstrip("\n").splitlines()[-1]
    # What does not fit is one key away: the footer ends at a whole key and says where.
    assert footer.startswith("? Help q Quit k Kill"), footer
    assert footer.rstrip().endswith("s Peak … ? all keys"), footer
    term.keys("4")
    screen = term.wait_for("◀ 3-4 of 4 ▶")
    assert "4 postgres" in screen and "1 kafka" not in screen
    term.keys("?")
    screen = term.wait_for("Keys: run")
    assert "SIGKILL the broker" in screen
    term.keys("Escape")
    term.wait_for("◀ 3-4 of 4 ▶")
    screen = term.wait_for("whole-run figures", timeout=40)
    assert "acked 6,000" in screen
    term.keys("e")
    term.wait_for("exported:")
    run_id = recorded().run_id
    results = tmp_path / "results"
    assert sorted(p.name for p in results.iterdir()) == [
        f"{run_id}.html",
        f"{run_id}.json",
        f"{run_id}.md",
    ]
    term.keys("q")
    term.wait_until_gone(20)
    assert (tmp_path / "exit-code").read_text().strip() == "0"


def test_at_200x50_all_four_brokers_side_by_side(lab_tui):
    term = lab_tui(200, 50)
    screen = term.wait_for("space Freeze", "4 postgres")
    [titles] = [line for line in screen.splitlines() if "1 kafka" in line]
    for name in ("2 rabbitmq", "3 redis", "4 postgres"):
        assert name in titles, titles
    assert "◀" not in screen  # nothing scrolled away
    assert "space Freeze" in screen.rstrip("\n").splitlines()[-1]  # every key fits
    term.keys("space")
    term.wait_for("FROZEN")
    term.keys("space")
    screen = term.wait_for("whole-run figures", timeout=40)
    assert "leads" in screen
    term.keys("C-c")  # quits at once, like q when no run is going
    term.wait_until_gone(20)
