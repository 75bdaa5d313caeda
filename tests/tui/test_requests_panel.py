"""The request-reply lines of a broker column (Pilot, recorded Snapshots with request
figures): the round trip and what became of the requests; other runs do not show them."""

import dataclasses

from lab.metrics import Latency, RequestFigures
from tests.tui.support import StillFeed, pilot_test, recorded, until
from tui import make_app
from tui.widgets.broker_column import BrokerColumn

FIGURES = RequestFigures(
    round_trip=Latency(count=40, p50=9.0, p95=14.0, p99=16.5, max=20.0),
    replied=1_234,
    timed_out=3,
    late_replies=1,
    held_back=40,
)


def app_with(figures: RequestFigures | None, tmp_path):
    feed = StillFeed(recorded(), 20)
    feed.snapshots = [
        dataclasses.replace(
            s, brokers=tuple(dataclasses.replace(b, requests=figures) for b in s.brokers)
        )
        for s in feed.snapshots
    ]
    return make_app(feed=feed, info=feed.info, results_dir=tmp_path, cursor_blink=False)


def lines_of(screen, broker: str):
    return screen.query_one(f"#column-{broker}", BrokerColumn).query_one("#requests")


@pilot_test
async def test_a_request_reply_run_shows_the_round_trip_and_the_timeouts(tmp_path):
    app = app_with(FIGURES, tmp_path)
    async with app.run_test(size=(200, 60)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.rendered_seq == 20)
        lines = lines_of(screen, "redis")
        assert lines.display
        text = str(lines.render())
        for words in ("rtt  p50 9.0  p99 16.5 ms", "replied 1,234", "timed out 3", "held back 40"):
            assert words in text, text


@pilot_test
async def test_other_runs_have_no_request_lines(tmp_path):
    app = app_with(None, tmp_path)
    async with app.run_test(size=(200, 60)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.rendered_seq == 20)
        assert not lines_of(screen, "kafka").display
