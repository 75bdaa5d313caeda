"""The dashboard against real brokers (native runtime, the session's isolated lab): tick two
brokers, start a short quickstart, watch the numbers move, kill and restart a broker,
export, quit, and find nothing left running."""

import os

import psutil
import pytest
from textual.widgets import DataTable

from lab import brokers as registry
from lab.runtimes import BrokerState
from tests.helpers import forkservers
from tests.tui.support import pilot_test, until
from tui import make_app
from tui.screens.confirm import ConfirmScreen
from tui.screens.run import RunScreen
from tui.screens.start import StartScreen
from tui.widgets.event_log import EventLog

pytestmark = pytest.mark.brokers
PICKED = ["redis", "postgres"]  # the two that start fastest


def workers_alive() -> list[str]:
    """Worker processes of this test process: the children of its forkserver."""
    found = []
    for server in forkservers(os.getpid()):
        try:
            found += [f"{p.name()} {p.pid}" for p in server.children() if p.is_running()]
        except psutil.Error:
            continue
    return found


async def start_quickstart(pilot, brokers: list[str], duration: str) -> RunScreen:
    """Tick `brokers` (only), type a duration, press Start, as a user does."""
    app = pilot.app
    start = app.screen
    assert isinstance(start, StartScreen)
    await until(pilot, lambda: len(start.statuses) == len(registry.names()), 60, "broker states")
    table = start.query_one("#brokers", DataTable)
    table.focus()
    await pilot.press(*["up"] * len(registry.names()))
    for broker in registry.names():
        if (broker in brokers) != (broker in start.ticked):
            await pilot.press("space")
        await pilot.press("down")
    assert start.ticked == set(brokers)
    assert start.recipe.name == "quickstart"
    await pilot.click("#duration")
    await pilot.press(*duration)
    await pilot.click("#start-button")
    await until(pilot, lambda: isinstance(app.screen, RunScreen), 120, "brokers up, run started")
    return app.screen


@pilot_test
async def test_start_watch_kill_restart_export_quit(session_lab, tmp_path):
    runtime = session_lab.runtime
    before = {s.broker: s.state for s in runtime.status(PICKED, sample_seconds=0)}
    out = tmp_path / "results"
    app = make_app(runtime, results_dir=out, cursor_blink=False)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await start_quickstart(pilot, PICKED, "20s")
        assert screen.info.brokers == tuple(PICKED)
        redis, postgres = screen.columns
        log = screen.query_one(EventLog)

        def acked(column):
            return column.current.ledger.acked if column.current else 0

        await until(pilot, lambda: acked(redis) > 0 and acked(postgres) > 0, 60, "traffic")
        seen = acked(redis)
        await until(pilot, lambda: acked(redis) > seen, 10, "the numbers to move")

        await pilot.press("1", "k")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(
            pilot, lambda: any("kill redis" in line for line in log.lines_text), 10, "the event"
        )
        await until(pilot, lambda: redis.current.state != "healthy", 15, "redis to be seen down")
        assert postgres.current.state == "healthy"

        await pilot.press("r", "y")
        await until(
            pilot,
            lambda: any("restart redis" in line for line in log.lines_text),
            10,
            lambda: f"the restart event; the log says: {log.lines_text}",
        )
        await until(pilot, lambda: redis.current.state == "healthy", 60, "redis back")

        await until(pilot, lambda: screen.ended, 120, "the run to end")
        await pilot.press("e")
        await until(pilot, lambda: len(list(out.glob("*.md"))) == 1, 20, "the export")
        await until(pilot, lambda: any("exported:" in line for line in log.lines_text), 5)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 60, "the app to quit")

    [md] = out.glob("*.md")
    [result] = out.glob("*.json")
    assert md.stem == result.stem
    assert "kill redis" in md.read_text()  # the fault is in the results
    assert not workers_alive()
    after = {s.broker: s.state for s in runtime.status(PICKED, sample_seconds=0)}
    for broker in PICKED:
        # What the dashboard started it stopped; what was running before still is.
        expected = BrokerState.HEALTHY if before[broker] is BrokerState.HEALTHY else "stopped"
        assert after[broker] == expected, (broker, before[broker], runtime.status([broker], 0))


@pilot_test
async def test_quitting_during_a_run_asks_and_stops_everything(session_lab, tmp_path):
    runtime = session_lab.runtime
    before = runtime.status(["redis"], sample_seconds=0)[0].state
    out = tmp_path / "results"
    app = make_app(runtime, results_dir=out, cursor_blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start_quickstart(pilot, ["redis"], "60s")
        [redis] = screen.columns
        await until(pilot, lambda: redis.current and redis.current.ledger.acked > 0, 60, "traffic")
        assert workers_alive()
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, 60, "the app to quit")
    assert not workers_alive()
    [result] = out.glob("*.json")  # the interrupted run's results are kept
    assert '"duration_s"' in result.read_text()
    after = runtime.status(["redis"], sample_seconds=0)[0].state
    assert after == (BrokerState.HEALTHY if before is BrokerState.HEALTHY else "stopped")
