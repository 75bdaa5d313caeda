"""Every screen as a picture (pytest-textual-snapshot), at 80x24 and at 200x50.

Deterministic: recorded Snapshots (tests/data), fixed broker states, recipes and dead
letters, times in UTC, no cursor blink, no status polling. The pictures live in
tests/snapshots/; review a change with `pytest tests/test_tui_snapshots.py
--snapshot-update` and look at the SVGs.
"""

import time
from pathlib import Path

import pytest
import pytest_textual_snapshot

from tests.tui.support import (
    StillFeed,
    fixed_dead_letters,
    fixed_recipes,
    fixed_statuses,
    recorded,
    until,
)
from tui import make_app
from tui.screens.dead_letters import DeadLetterSource

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch):
    # The pictures go to tests/snapshots/<module>/ rather than syrupy's __snapshots__.
    monkeypatch.setattr(
        pytest_textual_snapshot.SVGImageExtension,
        "dirname",
        classmethod(lambda cls, *, test_location: str(SNAPSHOTS / test_location.basename)),
    )
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def still_app(tmp_path, **kwargs):
    feed = StillFeed(recorded(), 20)
    letters = fixed_dead_letters()
    return make_app(
        feed=feed,
        info=feed.info,
        results_dir=tmp_path,
        cursor_blink=False,
        dead_letters=lambda broker, run_id: DeadLetterSource(
            broker, run_id, lambda limit, _say: letters[:limit], lambda _say: 0
        ),
        **kwargs,
    )


async def _rendered(pilot):
    await until(pilot, lambda: getattr(pilot.app.screen, "rendered_seq", 0) == 20)


@pytest.mark.parametrize("size", SIZES)
def test_start_screen(snap_compare, tmp_path, size):
    app = make_app(
        broker_status=fixed_statuses,
        recipe_list=fixed_recipes(),
        results_dir=tmp_path,
        cursor_blink=False,
        poll_status=False,
    )

    async def ready(pilot):
        await until(pilot, lambda: pilot.app.screen.statuses, 10, "broker states")

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_recipe_editor(snap_compare, size):
    app = make_app(
        broker_status=fixed_statuses,
        recipe_list=fixed_recipes(),
        # Named in the hint line, so fixed for the picture; nothing is saved.
        results_dir=Path("results"),
        cursor_blink=False,
        poll_status=False,
    )

    async def editing(pilot):
        await until(pilot, lambda: pilot.app.screen.statuses, 10, "broker states")
        await pilot.press("e")
        await until(pilot, lambda: pilot.app.screen.query("#rate-rate"), 10, "the editor")

    assert snap_compare(app, terminal_size=size, run_before=editing)


@pytest.mark.parametrize("size", SIZES)
def test_run_screen_mid_run(snap_compare, tmp_path, size):
    assert snap_compare(still_app(tmp_path), terminal_size=size, run_before=_rendered)


@pytest.mark.parametrize("size", SIZES)
def test_run_screen_after_the_run(snap_compare, tmp_path, size):
    app = make_app(replay=recorded(), replay_speed=100, results_dir=tmp_path, cursor_blink=False)

    async def ended(pilot):
        await until(pilot, lambda: pilot.app.screen.ended, 20, "the replay to end")

    assert snap_compare(app, terminal_size=size, run_before=ended)


@pytest.mark.parametrize("size", SIZES)
def test_run_screen_fourth_column_selected(snap_compare, tmp_path, size):
    async def select(pilot):
        await _rendered(pilot)
        await pilot.press("4")

    assert snap_compare(still_app(tmp_path), terminal_size=size, run_before=select)


@pytest.mark.parametrize("size", SIZES)
def test_dead_letters_screen(snap_compare, tmp_path, size):
    async def open_dlq(pilot):
        await _rendered(pilot)
        await pilot.press("3", "d")
        await until(
            pilot, lambda: "6 dead letters" in str(pilot.app.screen.query_one("#note").render())
        )

    assert snap_compare(still_app(tmp_path), terminal_size=size, run_before=open_dlq)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare, tmp_path, size):
    async def open_help(pilot):
        await _rendered(pilot)
        await pilot.press("question_mark")

    assert snap_compare(still_app(tmp_path), terminal_size=size, run_before=open_help)


def test_confirm_dialog(snap_compare, tmp_path):
    async def ask(pilot):
        await _rendered(pilot)
        await pilot.press("2", "k")

    assert snap_compare(still_app(tmp_path), terminal_size=(80, 24), run_before=ask)
