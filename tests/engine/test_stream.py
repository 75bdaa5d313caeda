"""The stream stage on real brokers and real view stores: with no fault the features equal
the truth on every broker; a consumer crash over-counts a naive view by exactly the
ledger's duplicates and leaves a deduplicated one exact; a pause makes exactly the events
it held past the lateness bound late, and only the windows they belonged to are wrong.
In pub-sub every subscriber has its own store, compared with its own ledger; request-reply's
responders keep the features too. Windows that closed for good are compared while the
run goes on. Nothing the stage made is left in the store or the broker."""

import psycopg
import pytest
import redis as redis_py

from lab import brokers as registry
from lab.engine.clock import GO_DELAY_NS
from lab.engine.session import Session
from lab.faults import Fault
from lab.recipes import load, parse

pytestmark = pytest.mark.brokers
BROKERS = ["redis", "postgres"]  # the fault drills: two brokers keep them cheap
EVERY = list(registry.names())
PUB_SUB = [b for b in EVERY if "pub-sub" in registry.get(b).patterns]
REQUEST_REPLY = [b for b in EVERY if "request-reply" in registry.get(b).patterns]


def smoke(store: str, **stream) -> dict:
    """features-smoke, shortened, with this store and these [stream] fields."""
    data = load("features-smoke").to_dict()
    data.update(
        duration="8s",
        warmup="1s",
        rate={"rate": 150},
        consumers={"count": 2, "processing_time": "4ms", "prefetch": 20},
        redis={"claim_idle": "1s"},
    )
    data["stream"] = {**data["stream"], "view_store": store, **stream}
    return data


def run(
    session_lab, data: dict, brokers=BROKERS, faults=(), up=True, crash_after=None, mode="parallel"
):
    """`crash_after`: crash a consumer of each broker once it has delivered that many, so the
    crash lands mid-batch whenever messages start to flow."""
    for broker in brokers if up else ():
        session_lab.endpoint(broker)
    session = Session(session_lab.runtime, stop_started_brokers=False)
    session.start(parse(data), brokers, mode, faults)
    snapshots, crashed = [], set()
    for snap in session.snapshots():
        snapshots.append(snap)
        for b in snap.brokers if crash_after else ():
            if b.broker not in crashed and b.ledger.delivered >= crash_after:
                session.command(Fault("crash-consumer", b.broker))
                crashed.add(b.broker)
    assert crashed == (set(brokers) if crash_after else set()), crashed
    result = session.wait(timeout=180)
    session.close()
    assert result is not None
    for broker in brokers:
        s = result.brokers[broker].summary
        assert s["adds_up"] and s["in_flight"] == 0, (broker, s)
    return result, snapshots


def stream_of(result, broker) -> dict:
    return result.brokers[broker].summary["stream"]


def assert_left_nothing(session_lab, run_id: str) -> None:
    ep = session_lab.endpoint("redis")
    client = redis_py.Redis(host=ep.host, port=ep.port, password=ep.password)
    try:
        assert not client.keys(f"features:{run_id}:*")
        assert not client.keys(f"lab-{run_id}*")  # the queue and the alerts topic
    finally:
        client.close()
    ep = session_lab.endpoint("postgres")
    with psycopg.connect(
        host=ep.host, port=ep.port, user=ep.username, password=ep.password, dbname=ep.path
    ) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()]
    assert not [t for t in tables if t.startswith("features_")], tables


def assert_exact(st: dict, acked: int, where: object) -> None:
    """A comparison with nothing wrong: what a run without faults must show."""
    assert st["events"]["truth"] == acked > 0, (where, st)
    assert st["view_error"] == 0 and st["view"]["sum_error"] == 0, (where, st)
    assert st["windows"]["wrong"] == 0 and st["windows"]["late"] == 0, (where, st)
    t = st["triggers"]
    assert t["expected"] > 0, (where, t)
    assert t["fired"] == t["expected"] == t["sent"], (where, t)
    assert t["missed"] == t["spurious"] == t["duplicated"] == t["failed"] == 0, (where, t)
    assert t["latency_ms"]["count"] == t["sent"]  # every alert acked by the broker
    assert st["freshness_ms"]["count"] == st["events"]["applied"]


def test_without_faults_the_features_equal_the_truth_on_every_broker(session_lab):
    # Seven brokers starting at once on a small machine can hold a cold emulator's first
    # messages for seconds: the bound is past the run, so nothing here can be late and
    # every window must be exact whatever the machine's speed.
    data = smoke(
        "redis", windows={**smoke("redis")["stream"]["windows"], "allowed_lateness": "60s"}
    )
    result, snapshots = run(session_lab, data, brokers=EVERY)
    for broker in EVERY:
        st = stream_of(result, broker)
        assert_exact(st, result.brokers[broker].summary["acked"], broker)
        # The final Snapshot carries the comparison for the features panel.
        final = snapshots[-1].broker(broker).stream
        assert (
            final.final and final.view_error == 0 and final.expected == st["triggers"]["expected"]
        )
        assert final.trigger_p99_ms == st["triggers"]["latency_ms"]["p99"] is not None
    assert_left_nothing(session_lab, result.run_id)


def test_closed_windows_are_compared_with_the_truth_while_the_run_goes_on(session_lab):
    data = smoke("redis", windows={"kind": "tumbling", "size": "2s", "allowed_lateness": "3s"})
    data.update(duration="12s")
    result, snapshots = run(session_lab, data, brokers=["postgres"])
    st = stream_of(result, "postgres")
    assert_exact(st, result.brokers["postgres"].summary["acked"], "postgres")
    figures = [s.broker("postgres").stream for s in snapshots]
    live = [f for f in figures if not f.final and f.windows_to_s is not None]
    # Windows end every 2 s and close 3 s later: several are compared before the end.
    assert len({f.windows_to_s for f in live}) >= 3, [f.windows_to_s for f in live]
    assert [f.windows_to_s for f in live] == sorted(f.windows_to_s for f in live)
    for f in live:
        assert f.windows_wrong == f.missed == f.spurious == f.duplicated == 0, f
    last = live[-1]
    assert 0 < last.windows_exact <= st["windows"]["exact"], (last, st["windows"])
    assert 0 < last.expected <= st["triggers"]["expected"], (last, st["triggers"])
    # Trigger latency, live (the last 2 s) and at the end (the whole run).
    assert any(f.trigger_p99_ms is not None for f in figures if not f.final), figures
    assert figures[-1].trigger_p50_ms == st["triggers"]["latency_ms"]["p50"]


def test_pub_sub_keeps_a_store_per_subscriber_checked_with_its_own_ledger(session_lab):
    """A consumer of sub-1 crashes: its redeliveries over-count sub-1's naive view by
    sub-1's duplicates; sub-2 saw none and its features equal the truth."""
    # One broker at a time: every pub-sub broker at once, two subscriptions each, held
    # Kafka's deliveries for 10 s on two cores, so the crash found its consumer idle and
    # nothing came again. One consumer per subscription: the one told to crash gets sub-1's
    # next batch, not a share of the partitions that may stay quiet past the crash's grace.
    data = smoke("redis")
    data.update(pattern="pub-sub", subscribers={"count": 2}, duration="10s", drain_timeout="40s")
    data["consumers"] = {**data["consumers"], "count": 1}
    result, snapshots = run(
        session_lab, data, brokers=PUB_SUB, crash_after=2 * 2 * 150, mode="sequential"
    )
    assert PUB_SUB
    for broker in PUB_SUB:
        s = result.brokers[broker].summary
        crashed, calm = s["subscribers"]["sub-1"], s["subscribers"]["sub-2"]
        assert crashed["duplicates"] > 0 and calm["duplicates"] == 0, (broker, s)
        assert_exact(calm["stream"], calm["acked"], (broker, "sub-2"))
        st = crashed["stream"]
        assert st["view"]["over_count"] == st["view_error"] == crashed["duplicates"], (broker, st)
        assert st["view"]["under_count"] == 0, (broker, st)
        assert st["events"]["applied"] == st["events"]["truth"] + crashed["duplicates"]
        # The broker's figures are its subscribers' added up, as its ledger is.
        whole = s["stream"]
        assert whole["view_error"] == crashed["duplicates"], (broker, whole)
        assert whole["triggers"]["expected"] == 2 * calm["stream"]["triggers"]["expected"]
        assert (
            whole["events"]["applied"]
            == st["events"]["applied"] + calm["stream"]["events"]["applied"]
        )
        final = snapshots[-1].broker(broker)
        assert [x.stream.view_error for x in final.subscribers] == [crashed["duplicates"], 0]
        assert final.stream.view_error == crashed["duplicates"]
    assert_left_nothing(session_lab, result.run_id)


def test_request_reply_responders_keep_the_features(session_lab):
    data = smoke("postgres")
    data.update(pattern="request-reply", requests={"mode": "async"})
    result, _ = run(session_lab, data, brokers=REQUEST_REPLY)
    assert REQUEST_REPLY
    for broker in REQUEST_REPLY:
        s = result.brokers[broker].summary
        assert s["replied"] == s["acked"], (broker, s)
        assert_exact(s["stream"], s["acked"], broker)
    assert_left_nothing(session_lab, result.run_id)


def test_a_crash_over_counts_a_naive_view_by_the_duplicates(session_lab):
    result, _ = run(session_lab, smoke("postgres"), faults=[(3, Fault("crash-consumer"))])
    for broker in BROKERS:
        s = result.brokers[broker].summary
        st = s["stream"]
        assert s["duplicates"] > 0, (broker, s)
        assert st["view"]["over_count"] == s["duplicates"], (broker, st, s["duplicates"])
        assert st["view_error"] == s["duplicates"] and st["view"]["under_count"] == 0
        assert st["events"]["applied"] == st["events"]["truth"] + s["duplicates"]
    assert_left_nothing(session_lab, result.run_id)


def test_dedupe_keeps_the_view_exact_through_a_crash(session_lab):
    """What recipes/fraud-features-dedupe.toml says: no over-count anywhere, but where the
    crashed consumer's partitions wait for a rebalance (Kafka, 10 s) past the lateness
    bound, late events, and windows wrong by exactly them."""
    brokers = [*BROKERS, "kafka"]
    windows = {"kind": "tumbling", "size": "5s", "allowed_lateness": "2s"}
    data = smoke("redis", dedupe=True, windows=windows)
    data["drain_timeout"] = "40s"
    result, _ = run(session_lab, data, brokers=brokers, faults=[(3, Fault("crash-consumer"))])
    for broker in brokers:
        s = result.brokers[broker].summary
        st = s["stream"]
        assert s["duplicates"] > 0, (broker, s)
        assert st["events"]["deduped"] == s["duplicates"], (broker, st)
        assert st["view_error"] == 0, (broker, st)
        w = st["windows"]
        assert w["wrong"] == w["wrong_by_late"], (broker, w)  # short, never over-counted
        assert w["late"] or not w["wrong"], (broker, w)
        t = st["triggers"]
        assert t["spurious"] == t["duplicated"] == 0, (broker, t)
        assert t["fired"] == t["expected"] - t["missed"], (broker, t)
    kafka = stream_of(result, "kafka")["windows"]
    assert kafka["late"] > 0 and kafka["wrong"] > 0, kafka


def run_clock(result, broker: str, words: str) -> float:
    """When an event of the run happened on the producers' clock: events are in session
    seconds, and the run's clock zero is GO_DELAY after "producing at"."""
    t0 = next(e.t for e in result.events if e.broker == broker and "producing at" in e.message)
    t = next(e.t for e in result.events if e.broker == broker and words in e.message)
    return t - t0 - GO_DELAY_NS / 1e9


def intended_in(rate: float, start: float, end: float) -> int:
    """Messages one producer's steady schedule meant to send in [start, end) s."""
    return sum(1 for k in range(int(end * rate) + 2) if start <= k / rate < end)


def test_a_pause_makes_late_exactly_what_it_held_past_the_bound(session_lab):
    """Windows of 6 s, 1 s lateness, the broker paused from 4 s to 13 s. Everything sent
    from the pause on waits for the resume; the windows that closed by then ([0, 6) at 7 s
    and [6, 12) at 13 s) get it late, so the late events are those sent from the pause to
    12 s, plus the few that were on their way when it began. The window [12, 18) closes at
    19 s, long after the backlog drained: none of its events is late. (Faults fire on the
    clock's half-second ticks, so the pause and the resume come up to 0.5 s after their
    times: the count starts from when they came.)"""
    size, lateness, rate = 6, 1, 100
    windows = {"kind": "tumbling", "size": f"{size}s", "allowed_lateness": f"{lateness}s"}
    data = smoke("redis", windows=windows)
    data.update(duration="16s", drain_timeout="30s", rate={"rate": rate})
    data["consumers"]["processing_time"] = "1ms"
    data["stream"].pop("triggers")
    result, snapshots = run(
        session_lab,
        data,
        brokers=["postgres"],
        faults=[(4, Fault("pause")), (13, Fault("resume"))],
    )
    st = stream_of(result, "postgres")
    w = st["windows"]
    paused = run_clock(result, "postgres", "pause")
    resumed = run_clock(result, "postgres", "resume")
    assert 4 <= paused < 5 and 13 <= resumed < 14, (paused, resumed)
    closed_by = (resumed - lateness) // size * size  # the end of the last window closed
    held = intended_in(rate, paused + 0.1, closed_by)  # the fault's event comes just before it
    on_the_way = intended_in(rate, paused - 0.5, paused + 0.1)
    assert held <= w["late"] <= held + on_the_way, (w, paused, resumed, held)
    # Every wrong window is short by exactly its late events; the view is not windowed.
    assert w["wrong"] == w["wrong_by_late"] > 0, w
    assert w["late_updates"] == w["late"]  # tumbling: one window per event
    assert st["view_error"] == 0, st
    assert st["freshness_ms"]["p99"] >= 2000, st["freshness_ms"]
    # The wrong windows showed while the run went on, once they could change no more.
    live = [s.broker("postgres").stream for s in snapshots]
    assert any(f.windows_wrong for f in live if not f.final), live


def test_the_store_is_started_when_it_is_not_running(session_lab):
    session_lab.runtime.down(["redis"])
    result, _ = run(
        session_lab,
        smoke("redis", windows={"kind": ""}, triggers={"action": ""}),
        brokers=["postgres"],
    )
    assert any("starting redis" in e.message for e in result.events), result.events
    assert stream_of(result, "postgres")["view_error"] == 0


def test_a_command_trigger_runs_once_per_window_that_fires(session_lab, tmp_path):
    out = tmp_path / "alerts.txt"
    command = f'echo "$LAB_ALERT_BROKER $LAB_ALERT_KEY $LAB_ALERT_WINDOW_START_S" >> {out}'
    data = smoke("postgres", triggers={"action": "command", "threshold": 20, "command": command})
    result, _ = run(session_lab, data, brokers=["redis"])
    t = stream_of(result, "redis")["triggers"]
    assert t["fired"] == t["expected"] == t["sent"] > 0, t
    lines = out.read_text().splitlines()
    assert len(lines) == t["fired"] and all(line.startswith("redis ") for line in lines)


def test_a_traffic_peak_makes_the_features_late_not_wrong(session_lab):
    """features-peak, shortened: five times the rate for 8 s, beyond the consumers'
    capacity. Freshness and trigger latency climb to seconds with the backlog and come
    back after it; the features stay exact (the lateness bound outlasts the backlog)."""
    data = load("features-peak").to_dict()
    data.update(duration="28s", drain_timeout="40s")
    data["faults"] = [{"at": "8s", "action": "peak", "args": {"x": 5, "for": 8}}]
    result, snapshots = run(session_lab, data, brokers=["redis"])
    st = stream_of(result, "redis")
    assert_exact(st, result.brokers["redis"].summary["acked"], "redis")
    peak_at = next(i for i, s in enumerate(snapshots) if any("peak" in e.message for e in s.events))
    live = [(s.broker("redis"), i) for i, s in enumerate(snapshots)]
    live = [(b, i) for b, i in live if b.stream is not None and not b.stream.final]

    def worst(rows, name):
        return max((getattr(b.stream, name) or 0 for b, _ in rows), default=0)

    before = [(b, i) for b, i in live if i < peak_at and b.phase == "running"]
    after = [(b, i) for b, i in live if i >= peak_at]
    max_lag = max(b.lag or 0 for b, _ in after)
    assert max_lag > 1_000, max_lag  # the peak did build a backlog
    backlogged = [(b, i) for b, i in after if (b.lag or 0) >= max_lag / 2]
    for name in ("freshness_p99_ms", "trigger_p99_ms"):
        calm = worst(before, name)
        assert worst(backlogged, name) >= max(1_000, 4 * calm), (name, calm, backlogged)
    # ... and back down once the backlog is gone.
    top = max(after, key=lambda row: row[0].lag or 0)[1]
    drained = [b for b, i in after if i > top and (b.lag or 0) < 50]
    assert drained and min(b.stream.freshness_p99_ms or 0 for b in drained) < 1_000, drained
