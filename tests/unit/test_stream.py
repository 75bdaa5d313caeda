"""The stream stage without a broker: windowing against a brute-force reference, events,
the truth and its comparison, and the [stream] section's mistakes."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab import results_schema
from lab.errors import LabError
from lab.ledger import Ledger, SeqCollector
from lab.recipes import RecipeError, parse
from lab.recipes.model import Stream, Windows
from lab.stream import summary, truth
from lab.stream.events import EventSource
from lab.stream.windows import WindowOperator, WindowSpec

SPECS = st.builds(
    lambda size, hop_div, lateness: WindowSpec(size, max(1, size // hop_div), lateness),
    st.integers(1, 5000),
    st.integers(1, 8),
    st.integers(0, 3000),
)


def brute_starts(spec: WindowSpec, t: int) -> list[int]:
    """Every multiple of hop whose window [s, s + size) holds t, found by trying them all."""
    lo = (t - spec.size_ms - spec.hop_ms) // spec.hop_ms * spec.hop_ms
    return [
        s
        for s in range(lo, t + spec.hop_ms + 1, spec.hop_ms)
        if s % spec.hop_ms == 0 and s <= t < s + spec.size_ms
    ]


@given(SPECS, st.integers(-100_000, 100_000))
def test_window_starts_match_brute_force(spec, t):
    assert list(spec.starts(t)) == brute_starts(spec, t)


EVENTS = st.lists(
    st.tuples(
        st.integers(0, 4),  # key
        st.integers(-50, 500),  # value
        st.integers(0, 30_000),  # event time, ms
        st.integers(0, 8_000),  # delay until it arrives, ms
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(SPECS, EVENTS)
def test_windowing_with_lateness_matches_brute_force(spec, events):
    """The operator, fed in arrival order, against: for each window and key, the events
    inside it that arrived before the watermark passed its end, and the ones after."""
    arrivals = sorted(events, key=lambda e: e[2] + e[3])
    op = WindowOperator(spec).add_all((k, v, t, t + d) for k, v, t, d in arrivals)
    expect: dict = {}
    late: dict = {}
    late_events = 0
    for key, value, t, delay in events:
        any_late = False
        for s in brute_starts(spec, t):
            window_end = s + spec.size_ms
            on_time = (t + delay) - spec.lateness_ms < window_end
            into = expect if on_time else late
            cell = into.setdefault((s, key), [0, 0])
            cell[0] += 1
            cell[1] += value
            any_late |= not on_time
        late_events += any_late
    assert op.windows == expect
    assert op.late == late
    assert op.late_events == late_events


@given(SPECS, EVENTS)
def test_order_does_not_matter_when_nothing_is_late(spec, events):
    forward = WindowOperator(spec).add_all((k, v, t, None) for k, v, t, _ in events)
    backward = WindowOperator(spec).add_all((k, v, t, None) for k, v, t, _ in events[::-1])
    assert forward.windows == backward.windows
    assert not forward.late


def test_tumbling_and_hopping_from_the_recipe():
    tumbling = WindowSpec.of(Windows(kind="tumbling", size=10, allowed_lateness=2))
    assert tumbling == WindowSpec(10_000, 10_000, 2_000)
    assert list(tumbling.starts(15_000)) == [10_000]
    hopping = WindowSpec.of(Windows(kind="hopping", size=60, hop=10))
    assert list(hopping.starts(65_000)) == [10_000, 20_000, 30_000, 40_000, 50_000, 60_000]
    assert WindowSpec.of(Windows()) is None
    # Closed once the watermark (now - lateness) reaches the window's end.
    assert not tumbling.closed(10_000, 21_999) and tumbling.closed(10_000, 22_000)


def test_events_are_deterministic_and_follow_their_distribution():
    zipf = EventSource(Stream(view_store="redis", keys=100, key_skew="zipf", seed=7))
    again = EventSource(Stream(view_store="redis", keys=100, key_skew="zipf", seed=7))
    other = EventSource(Stream(view_store="redis", keys=100, key_skew="zipf", seed=8))
    events = [zipf.event(p, s) for p in range(2) for s in range(5000)]
    assert events == [again.event(p, s) for p in range(2) for s in range(5000)]
    assert events != [other.event(p, s) for p in range(2) for s in range(5000)]
    keys = Counter(k for k, _ in events)
    assert set(keys) <= set(range(100))
    assert keys.most_common(1)[0][0] == 0  # rank 0 is the hottest key
    assert all(v >= 1 for _, v in events)  # amounts, in hundredths
    likes = EventSource(Stream(view_store="redis", values="like", like_share=0.7))
    values = [likes.event(0, s)[1] for s in range(10_000)]
    assert set(values) == {1, -1}
    assert values.count(1) / len(values) == pytest.approx(0.7, abs=0.02)
    uniform = EventSource(Stream(view_store="redis", keys=10, key_skew="uniform"))
    spread = Counter(uniform.event(0, s)[0] for s in range(10_000))
    assert min(spread.values()) > 800


def ledger_of(acked: list[tuple[int, int]]) -> Ledger:
    ledger = Ledger()
    seqs = SeqCollector()
    for p, s in acked:
        seqs.add(p, s)
    ledger.record_acked(seqs.export(), len(acked))
    return ledger


def test_the_comparison_counts_redeliveries_losses_and_late_events():
    cfg = Stream(
        view_store="redis",
        keys=1_000_000,  # so that no key is both over- and under-counted
        key_skew="uniform",
        windows=Windows(kind="tumbling", size=1, allowed_lateness=0.5),
    )
    cfg = parse({"stream": {**_plain(cfg), "triggers": {"action": "alert", "threshold": 0}}}).stream
    t0 = 10**12
    acked = [(0, s) for s in range(400)]
    times = {0: {s: t0 + s * 10_000_000 for s in range(400)}}  # one every 10 ms
    ground = truth.compute(cfg, ledger_of(acked), times, t0)
    assert ground.events == 400 and ground.untimed == 0
    # A naive store that saw seq 0..9 twice (a redelivered batch), lost 390..399, and got
    # 100..109 too late for their window.
    source, spec = EventSource(cfg), WindowSpec.of(cfg.windows)
    delivered = [s for s in range(390)] + list(range(10))
    op = WindowOperator(spec)
    view: dict[int, list[int]] = {}
    for s in delivered:
        key, value = source.event(0, s)
        cell = view.setdefault(key, [0, 0])
        cell[0] += 1
        cell[1] += value
        t_ms = s * 10
        op.add(key, value, t_ms, t_ms + (5_000 if 100 <= s < 110 else 5))
    totals = summary.StageTotals(late_events=op.late_events)
    totals.late = {w: cell[0] for w, cell in op.late.items()}
    out = summary.compare(
        cfg,
        ground,
        {k: tuple(c) for k, c in view.items()},
        {w: tuple(c) for w, c in op.windows.items()},
        totals,
    )
    assert out["view"]["over_count"] == 10 and out["view"]["under_count"] == 10
    assert out["view_error"] == 20
    assert out["windows"]["late"] == 10
    assert out["windows"]["wrong"] >= 1
    assert out["triggers"]["missed"] == out["triggers"]["expected"]  # nothing fired
    assert results_schema.STREAM  # and it is what the schema describes:
    assert not _schema_problem(out)


def _plain(cfg: Stream) -> dict:
    from lab.recipes.model import _plain as plain

    return plain(cfg)


def _schema_problem(stream: dict) -> str | None:
    from jsonschema import Draft202012Validator

    errors = list(Draft202012Validator(results_schema.STREAM).iter_errors(stream))
    return errors[0].message if errors else None


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"view_store": "mongo"}, ["stream.view_store", "'mongo'", "redis, postgres"]),
        ({"dedupe": True}, ["stream.view_store", "needs a store"]),
        ({"view_store": "redis", "keys": 0}, ["stream.keys", "too small"]),
        ({"view_store": "redis", "values": "euros"}, ["stream.values", "amount, reading, like"]),
        (
            {"view_store": "redis", "windows": {"kind": "hopping", "size": "60s"}},
            ["stream.windows.hop", "hop > 0"],
        ),
        (
            {"view_store": "redis", "windows": {"kind": "hopping", "size": "6s", "hop": "10s"}},
            ["stream.windows.hop", "longer than the window"],
        ),
        (
            {"view_store": "redis", "triggers": {"action": "alert"}},
            ["stream.triggers.action", "set windows"],
        ),
        (
            {
                "view_store": "redis",
                "windows": {"kind": "tumbling"},
                "triggers": {"action": "command"},
            },
            ["stream.triggers.command", "needs the command"],
        ),
        (
            {
                "view_store": "redis",
                "values": "like",
                "windows": {"kind": "tumbling"},
                "triggers": {"action": "alert", "statistic": "sum"},
            },
            ["stream.triggers.statistic", "can fall again"],
        ),
        (
            {"view_store": "redis", "windows": {"kind": "tumbling", "size": "soon"}},
            ["stream.windows.size", "not a duration"],
        ),
        ({"view_store": "redis", "window": {}}, ["stream.window", "did you mean 'windows'"]),
    ],
)
def test_stream_mistakes_are_one_line(section, words):
    with pytest.raises(RecipeError) as err:
        parse({"stream": section}, "recipes/mine.toml")
    message = str(err.value)
    assert message.startswith("recipes/mine.toml: ") and "\n" not in message
    for word in words:
        assert word in message, message


def test_a_stream_recipe_round_trips():
    recipe = parse({"name": "r", "stream": {"view_store": "postgres", "dedupe": True}})
    assert parse(recipe.to_dict()) == recipe
    assert recipe.stream.on and not parse({}).stream.on


def test_results_with_a_stream_stage_load_and_export(tmp_path):
    import json

    from lab.export.markdown import to_markdown
    from lab.report.page import render
    from lab.results import RunResult
    from tests.helpers import DATA

    data = json.loads((DATA / "replay-quickstart.json").read_text())
    plain = RunResult.from_dict(json.loads(json.dumps(data)))
    assert "view error" not in to_markdown(plain)  # no stream stage, no stream rows
    cfg = parse({"stream": {"view_store": "redis", "windows": {"kind": "tumbling"}}}).stream
    stream = summary.compare(cfg, truth.Truth(), {1: (2, 3)}, {}, summary.StageTotals())
    for broker in data["brokers"].values():
        broker["summary"]["stream"] = stream
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    result = RunResult.load(path)  # checked against the schema
    markdown = to_markdown(result)
    assert "| view error (count) | **2** |" in markdown
    assert "windows exact / wrong / late | 0 / 0 / 0" in markdown
    assert "view error (count)" in render([result], js="", css="")
    data["brokers"]["kafka"]["summary"]["stream"]["windows"] = {"exact": -1}
    path.write_text(json.dumps(data))
    with pytest.raises(LabError, match=r"stream\.windows"):
        RunResult.load(path)


def test_the_rate_limit_holds_back_a_burst():
    from lab.stream.triggers import RateLimit

    limit = RateLimit(3.0)  # a burst of up to one second's worth, then 3 a second
    taken = [limit.take() for _ in range(10)]
    assert taken[:3] == [True] * 3 and not any(taken[3:])


def _run_of(cfg: Stream, late_seqs: range, twice: range):
    """400 events of one producer, one every 10 ms: a store that got `late_seqs` after
    their windows closed and `twice` redelivered (naive), and the truth."""
    t0 = 10**12
    times = {0: {s: t0 + s * 10_000_000 for s in range(400)}}
    ground = truth.compute(cfg, ledger_of([(0, s) for s in range(400)]), times, t0)
    source, spec = EventSource(cfg), WindowSpec.of(cfg.windows)
    op = WindowOperator(spec)
    for s in [*range(400), *twice]:
        key, value = source.event(0, s)
        op.add(key, value, s * 10, s * 10 + (5_000 if s in late_seqs else 5))
    return t0, times, ground, op


@pytest.mark.parametrize("kind", ["tumbling", "hopping"])
def test_the_live_comparison_agrees_with_the_final_one(kind):
    """Window by window, in chunks as the engine does it, the live tally comes to what
    the comparison at the end says about the same windows and triggers."""
    from array import array

    from lab.stream.live import LiveTally, LiveTruth

    windows = Windows(kind=kind, size=1, hop=0.5 if kind == "hopping" else 0, allowed_lateness=0.2)
    cfg = Stream(view_store="redis", keys=7, key_skew="zipf", windows=windows)
    trig = {"action": "alert", "threshold": 4}
    cfg = parse({"stream": {**_plain(cfg), "triggers": trig}}).stream
    t0, times, ground, op = _run_of(cfg, late_seqs=range(100, 130), twice=range(200, 220))
    store = {w: tuple(c) for w, c in op.windows.items()}
    # What fired: the store's crossings, as the stage reports them (some spurious ones).
    fired = [w for w, c in op.windows.items() if c[0] > 4]
    totals = summary.StageTotals(late_events=op.late_events, fired=fired)
    final = summary.compare(cfg, ground, {}, store, totals)
    live_truth = LiveTruth(cfg)
    pairs = array("q", [x for s, ns in times[0].items() for x in (s, ns)])
    live_truth.add(0, pairs, t0)
    spec = WindowSpec.of(cfg.windows)
    tally = LiveTally(spec.starts(0)[0])
    tally.on_fired(fired)
    for now_ms in range(0, 6_000, 700):  # the engine compares once a second or so
        starts = tally.due(spec, now_ms, now_ms, now_ms)
        observed = {w: c for w, c in store.items() if w[0] in starts}
        tally.compare(live_truth, starts, observed, ("count", 4))
        live_truth.forget_below(tally.next_start)
    assert tally.exact == final["windows"]["exact"] and tally.wrong == final["windows"]["wrong"]
    t = final["triggers"]
    assert (tally.expected, tally.missed, tally.spurious) == (
        t["expected"],
        t["missed"],
        t["spurious"],
    )
    assert final["windows"]["wrong"] > 0 and t["expected"] > 0  # the case is not trivial
    assert not live_truth.cells and not tally.fired


def test_nothing_is_compared_live_before_its_truth_and_its_store_are_final():
    from lab.stream.live import LiveTally, horizon

    spec = WindowSpec(size_ms=1000, hop_ms=1000, lateness_ms=500)
    tally = LiveTally(0)
    assert horizon([]) == float("inf") and horizon([3, None]) is None and horizon([5, 2]) == 2
    assert tally.due(spec, None, 9_000, 9_000) == []  # a producer said nothing yet
    assert tally.due(spec, 9_000, None, 9_000) == []  # nor a consumer
    # [0, 1 s) and [1, 2 s) closed at 1.5 and 2.5 s; the producers' mark is at 1.9 s.
    assert tally.due(spec, 1_900, 2_600, 9_000) == [0]
    assert tally.due(spec, 9_000, 2_400, 9_000) == [0]  # a consumer is at 2.4 s
    assert tally.due(spec, 9_000, 2_600, 9_000) == [0, 1000]
    assert tally.due(spec, float("inf"), float("inf"), 2_500) == [0, 1000, 2000]


def test_the_resolved_mark_waits_for_the_oldest_ack():
    from lab.brokers.contract import Ack, Outgoing
    from lab.stream.acks import AckTimes

    posted = []
    acks = AckTimes(posted.append)
    assert acks.resolved_ns() is None  # before the schedule starts
    acks.next_due = lambda: 900
    acks.sent([Outgoing(s, 100 * (s + 1), b"") for s in range(4)])  # intended 100 .. 400
    acks.add([Ack(1, 200, True), Ack(2, 300, False)])
    assert acks.resolved_ns() == 100  # seq 0 may still be acked
    acks.add([Ack(0, 100, True)])
    assert acks.resolved_ns() == 400
    acks.add([Ack(3, 400, True)])
    assert acks.resolved_ns() == 900  # nothing waits: the next one due
    acks.flush()
    raw, mark = posted[-1][1]
    from array import array

    pairs = array("q")
    pairs.frombytes(raw)
    assert mark == 900 and list(pairs) == [1, 200, 0, 100, 3, 400]  # failed ones left out


def test_subscriptions_add_up_to_the_broker():
    from lab.metrics import new_histogram, record_us

    cfg = parse(
        {
            "stream": {
                "view_store": "redis",
                "windows": {"kind": "tumbling"},
                "triggers": {"action": "alert"},
            }
        }
    ).stream
    parts = []
    for view in ({1: (2, 3)}, {1: (1, 3), 2: (4, 4)}):
        totals = summary.StageTotals(applied=3, fired=[(0, 1)])
        record_us(totals.trigger_latency, 5_000_000)
        parts.append(summary.compare(cfg, truth.Truth(), view, {}, totals))
    latency = new_histogram()
    record_us(latency, 7_000_000)
    whole = summary.combined(parts, new_histogram(), latency)
    assert whole["view_error"] == parts[0]["view_error"] + parts[1]["view_error"] == 7
    assert whole["events"]["applied"] == 6 and whole["triggers"]["fired"] == 2
    assert whole["triggers"]["spurious"] == 2 and whole["store"] == "redis"
    assert whole["triggers"]["latency_ms"]["p50"] == pytest.approx(7, rel=0.01)
    assert summary.combined(parts[:1], new_histogram(), latency) is parts[0]
    assert not _schema_problem(whole)


def test_trigger_latency_is_a_row_of_every_comparison(tmp_path):
    import json

    from lab.export.markdown import to_markdown
    from lab.metrics import record_us
    from lab.report.page import render
    from lab.results import RunResult
    from tests.helpers import DATA

    data = json.loads((DATA / "replay-quickstart.json").read_text())
    cfg = parse(
        {
            "stream": {
                "view_store": "redis",
                "windows": {"kind": "tumbling"},
                "triggers": {"action": "alert"},
            }
        }
    ).stream
    totals = summary.StageTotals()
    for ms in (4, 5, 6, 90):
        record_us(totals.trigger_latency, ms * 1_000_000)
    stream = summary.compare(cfg, truth.Truth(), {}, {}, totals)
    for broker in data["brokers"].values():
        broker["summary"]["stream"] = stream
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    result = RunResult.load(path)
    assert "| trigger latency p50 / p99 (ms) | 5.0 / 90.0 |" in to_markdown(result)
    html = render([result], js="", css="")
    assert "trigger latency p50 / p99 (ms)" in html and "5.0 / 90.0" in html
