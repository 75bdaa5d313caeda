"""The features panel of a broker column (Pilot, recorded Snapshots with stream figures):
live it shows the over-count so far and the windows already compared with the truth, at
the end the whole comparison; trigger latency both ways; runs without a [stream] stage do
not show it."""

import dataclasses

from lab.stream.figures import StreamFigures
from tests.tui.support import StillFeed, pilot_test, recorded, until
from tui import make_app
from tui.widgets.broker_column import BrokerColumn

LIVE = StreamFigures(
    store="redis",
    dedupe=False,
    applied=1_200,
    late=3,
    fired=4,
    freshness_p50_ms=12.5,
    freshness_p99_ms=40.0,
    trigger_p50_ms=8.0,
    trigger_p99_ms=30.5,
    view_error=7,
)
# Live, with the windows ending by 35 s compared with the truth.
CLOSED = dataclasses.replace(
    LIVE, windows_to_s=35.0, windows_exact=40, windows_wrong=0, expected=3, missed=0
)
FINAL = dataclasses.replace(
    LIVE,
    final=True,
    view_error=7,
    expected=5,
    missed=2,
    spurious=1,
    duplicated=0,
    windows_exact=230,
    windows_wrong=6,
)


def feed_with(figures: StreamFigures | None, upto: int = 20) -> StillFeed:
    feed = StillFeed(recorded(), upto)
    feed.snapshots = [
        dataclasses.replace(
            s, brokers=tuple(dataclasses.replace(b, stream=figures) for b in s.brokers)
        )
        for s in feed.snapshots
    ]
    return feed


def app_for(feed: StillFeed, tmp_path):
    return make_app(feed=feed, info=feed.info, results_dir=tmp_path, cursor_blink=False)


def panel_of(screen, broker: str):
    return screen.query_one(f"#column-{broker}", BrokerColumn).query_one("#features")


@pilot_test
async def test_the_panel_shows_the_live_figures(tmp_path):
    app = app_for(feed_with(LIVE), tmp_path)
    async with app.run_test(size=(200, 60)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.rendered_seq == 20)
        panel = panel_of(screen, "redis")
        assert panel.display
        text = str(panel.render())
        for words in (
            "features · redis · naive",
            "view error 7",
            "over-count so far",
            "late 3",
            "triggers 4 fired",
            "fresh p50 12.5",
            "p99 40.0 ms",
            "alert p50 8.0",
            "p99 30.5 ms",
        ):
            assert words in text, text
        assert "expected" not in text  # no window has closed for good yet


@pilot_test
async def test_the_panel_shows_the_windows_compared_so_far(tmp_path):
    app = app_for(feed_with(CLOSED), tmp_path)
    async with app.run_test(size=(200, 60)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.rendered_seq == 20)
        text = str(panel_of(screen, "redis").render())
        for words in ("windows 40 exact / 0 wrong to 35 s", "4 fired · 3 expected to 35 s"):
            assert words in text, text
        assert "over-count so far" in text and "missed" not in text


@pilot_test
async def test_the_panel_shows_the_comparison_at_the_end(tmp_path):
    app = app_for(feed_with(FINAL), tmp_path)
    async with app.run_test(size=(200, 60)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.rendered_seq == 20)
        text = str(panel_of(screen, "kafka").render())
        for words in ("vs truth", "windows 230 exact / 6 wrong", "4 fired / 5 expected"):
            assert words in text, text
        assert "missed 2" in text and "spurious 1" in text and "dup" not in text


@pilot_test
async def test_runs_without_a_stream_stage_have_no_panel(tmp_path):
    app = app_for(feed_with(None), tmp_path)
    async with app.run_test(size=(200, 60)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.rendered_seq == 20)
        assert not panel_of(screen, "postgres").display
