"""The dashboard driven by its keys (Pilot), over recorded Snapshots: no broker needed.

What each key sends is checked on a still feed (recorded Snapshots up to a moment of a
live run); the replay is checked as a user sees it.
"""

import json

from textual.command import CommandPalette
from textual.widgets import DataTable

from lab.faults import Fault
from tests.tui.support import StillFeed, fixed_dead_letters, pilot_test, recorded, until
from tui import make_app
from tui.config import TuiConfig
from tui.screens.confirm import ConfirmScreen
from tui.screens.dead_letters import DeadLetterSource, DeadLettersScreen
from tui.screens.help import HelpScreen
from tui.screens.run import RunScreen
from tui.widgets.broker_column import BrokerColumn
from tui.widgets.event_log import EventLog


def still_app(tmp_path, upto=20, live=True, react=False, **config):
    feed = StillFeed(recorded(), upto, live=live, react=react)
    app = make_app(
        feed=feed,
        info=feed.info,
        config=TuiConfig(**config),
        results_dir=tmp_path / "results",
        cursor_blink=False,
    )
    return app, feed


def text_of(column: BrokerColumn) -> str:
    return " ".join(str(r.render()) for r in column.query("Readout"))


@pilot_test
async def test_replay_plays_the_recorded_run(tmp_path):
    app = make_app(replay=recorded(), replay_speed=20, results_dir=tmp_path, cursor_blink=False)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        kafka = screen.query_one("#column-kafka", BrokerColumn)
        await until(pilot, lambda: kafka.current and kafka.current.produce_rate > 0, 10)
        first = kafka.current.ledger.acked
        await until(pilot, lambda: kafka.current.ledger.acked > first, 10, "numbers to move")
        await until(pilot, lambda: screen.ended, 20, "the replay to end")
        await pilot.pause()
        log = screen.query_one(EventLog)
        assert any("producing at 500 msgs/s" in line for line in log.lines_text)
        assert any("done" in line for line in log.lines_text)
        assert kafka.current.phase == "done"
        assert "whole-run figures" in str(screen.query_one("#header").render())
        assert kafka.current.ledger.delivered == recorded().brokers["kafka"].summary["delivered"]


@pilot_test
async def test_columns_are_selected_with_numbers_and_arrows_and_scroll_at_80(tmp_path):
    app, _ = still_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.rendered_seq == 20)
        columns = screen.columns
        assert [c.broker for c in columns] == ["kafka", "rabbitmq", "redis", "postgres"]
        assert columns[0].has_class("-selected") and screen.shown_columns == 2
        assert "◀ 1-2 of 4 ▶" in str(screen.query_one("#header").render())
        await pilot.press("4")
        assert screen.broker == "postgres" and columns[3].has_class("-selected")
        assert not columns[0].has_class("-selected")
        assert "◀ 3-4 of 4 ▶" in str(screen.query_one("#header").render())
        await pilot.press("left", "left")
        assert screen.broker == "rabbitmq" and screen.first_shown == 1
        await pilot.press("right", "right", "right")
        assert screen.broker == "kafka"  # wraps around


@pilot_test
async def test_fault_keys_send_faults_to_the_selected_broker(tmp_path):
    """The toggles (p, l, n) go by what the latest Snapshot says is in force."""
    app, feed = still_app(tmp_path, react=True, confirm_destructive=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: app.screen.rendered_seq == 20)
        await pilot.press("3")
        for key in ("k", "p", "p", "l", "l", "L", "n", "n", "c", "plus", "minus", "s", "S", "r"):
            seen = app.screen.rendered_seq
            await pilot.press(key)
            await until(pilot, lambda s=seen: app.screen.rendered_seq > s, what=key)
    assert feed.commands == [
        Fault("kill", "redis"),
        Fault("pause", "redis"),
        Fault("resume", "redis"),
        Fault("latency", "redis", {"ms": 50.0}),
        Fault("latency", "redis", {"ms": 100.0}),
        Fault("heal", "redis"),
        Fault("blackhole", "redis"),
        Fault("heal", "redis"),
        Fault("crash-consumer", "redis"),
        Fault("add-consumer", "redis"),
        Fault("remove-consumer", "redis"),
        Fault("peak", "redis", {"x": 10.0, "for": 10.0}),
        Fault("peak", "redis", {"x": 50.0, "for": 10.0}),
        Fault("restart", "redis"),
    ]


@pilot_test
async def test_a_partition_from_the_recipe_is_healed_by_n(tmp_path):
    """Whoever put the blackhole in place (here: the recipe, not a key), n heals it."""
    app, feed = still_app(tmp_path, react=True, confirm_destructive=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: app.screen.rendered_seq == 20)
        feed.command(Fault("blackhole", "redis"))  # as the recipe's schedule would
        await until(pilot, lambda: app.screen.rendered_seq == 21)
        await pilot.press("3", "n")
        await pilot.pause()
    assert feed.commands[-1] == Fault("heal", "redis")


@pilot_test
async def test_destructive_keys_ask_first(tmp_path):
    app, feed = still_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.rendered_seq == 20)
        await pilot.press("2", "k")
        assert isinstance(app.screen, ConfirmScreen)
        assert "Kill rabbitmq?" in str(app.screen.query_one("#question").render())
        await pilot.press("n")
        assert isinstance(app.screen, RunScreen) and feed.commands == []
        await pilot.press("k", "y")
        await pilot.press("s")  # a peak is not destructive: no question
        assert feed.commands == [
            Fault("kill", "rabbitmq"),
            Fault("peak", "rabbitmq", {"x": 10.0, "for": 10.0}),
        ]


@pilot_test
async def test_a_remapped_key_works_and_help_shows_it(tmp_path):
    app, feed = still_app(tmp_path, confirm_destructive=False, keymap={"kill": "K"})
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.screen.rendered_seq == 20)
        await pilot.press("k")
        assert feed.commands == []
        await pilot.press("K")
        assert feed.commands == [Fault("kill", "kafka")]
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = {row[1]: row for row in app.screen.rows}
        assert rows["kill"][0] == "K" and rows["kill"][2] == "Kill"
        # Generated from the bindings: every run key is there, hidden ones included.
        for binding_id in ("latency-clear", "big-peak", "pause-display", "quit"):
            assert binding_id in rows, binding_id
        # The nine column keys share one row.
        assert rows["select-1 … select-9"][0] == "1-9"
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)


@pilot_test
async def test_the_command_palette_lists_every_action(tmp_path):
    app, feed = still_app(tmp_path, confirm_destructive=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.screen.rendered_seq == 20)
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"big peak")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: feed.commands, 5, "the palette's command")
        assert feed.commands == [Fault("peak", "kafka", {"x": 50.0, "for": 10.0})]

    from tui.commands import ActionsProvider

    app, _ = still_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.screen.rendered_seq == 20)
        titles = [t for t, _, _ in ActionsProvider(app.screen)._actions()]
        for title in ("Kill (k)", "Restart (r)", "Latency (l)", "Freeze (space)", "Quit (q)"):
            assert title in titles, titles


@pilot_test
async def test_space_freezes_the_display_and_catches_up(tmp_path):
    app = make_app(replay=recorded(), replay_speed=4, results_dir=tmp_path, cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.rendered_seq >= 3)
        await pilot.press("space")
        frozen_at = screen.rendered_seq
        assert "FROZEN" in str(screen.query_one("#header").render())
        await pilot.pause(1.0)
        assert screen.rendered_seq == frozen_at  # nothing drawn, the replay holds too
        await pilot.press("space")
        await until(pilot, lambda: screen.rendered_seq > frozen_at, 5)
        assert "FROZEN" not in str(screen.query_one("#header").render())


@pilot_test
async def test_a_replay_refuses_faults_and_exports(tmp_path):
    out = tmp_path / "results"
    app = make_app(replay=recorded(), replay_speed=50, results_dir=out, cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.press("k")
        assert isinstance(app.screen, RunScreen)  # no question, nothing sent
        await pilot.press("e")
        await until(pilot, lambda: len(list(out.glob("*"))) == 3, 10, "the export")
        log = screen.query_one(EventLog)
        await until(pilot, lambda: any("exported:" in line for line in log.lines_text), 5)
    run_id = recorded().run_id
    assert sorted(p.name for p in out.iterdir()) == [
        f"{run_id}.html",
        f"{run_id}.json",
        f"{run_id}.md",
    ]
    assert json.loads((out / f"{run_id}.json").read_text())["run_id"] == run_id
    assert "| acked |" in (out / f"{run_id}.md").read_text()
    assert "uPlot" in (out / f"{run_id}.html").read_text()


@pilot_test
async def test_dead_letters_screen_lists_and_redrives(tmp_path):
    letters = fixed_dead_letters()
    redriven = []

    def redrive(_say):
        redriven.append(True)
        letters.clear()
        return 6

    def source(broker, run_id):
        return DeadLetterSource(broker, run_id, lambda limit, _say: list(letters[:limit]), redrive)

    feed = StillFeed(recorded(), 20)
    app = make_app(
        feed=feed, info=feed.info, dead_letters=source, results_dir=tmp_path, cursor_blink=False
    )
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.screen.rendered_seq == 20)
        await pilot.press("3", "d")
        assert isinstance(app.screen, DeadLettersScreen)
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 6, 5, "the dead letters")
        assert app.screen.source.broker == "redis"
        assert table.get_row("1764000000000-0")[1] == "poison message: processing failed"
        await pilot.press("R")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: table.row_count == 0, 5, "the redrive")
        assert redriven == [True]
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)


@pilot_test
async def test_quit_asks_while_a_run_is_going(tmp_path):
    app, feed = still_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.rendered_seq == 20)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, RunScreen) and not feed.closed
        await pilot.press("q", "y")
        await until(pilot, lambda: feed.closed, 10, "the feed to be closed")
    assert app.return_code == 0
