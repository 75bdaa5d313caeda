"""The stream stage on real brokers and real view stores: with no fault the features equal
the truth; a consumer crash over-counts a naive view by exactly the ledger's duplicates
and leaves a deduplicated one exact; a pause makes late events, and only the windows
they belonged to are wrong. Nothing the stage made is left in the store or the broker."""

import psycopg
import pytest
import redis as redis_py

from lab.engine.session import Session
from lab.faults import Fault
from lab.recipes import load, parse

pytestmark = pytest.mark.brokers
BROKERS = ["redis", "postgres"]


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


def run(session_lab, data: dict, brokers=BROKERS, faults=(), up=True):
    for broker in brokers if up else ():
        session_lab.endpoint(broker)
    session = Session(session_lab.runtime, stop_started_brokers=False)
    session.start(parse(data), brokers, "parallel", faults)
    snapshots = list(session.snapshots())
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


def test_without_faults_the_features_equal_the_truth(session_lab):
    result, snapshots = run(session_lab, smoke("redis"))
    for broker in BROKERS:
        st = stream_of(result, broker)
        assert st["events"]["truth"] == result.brokers[broker].summary["acked"] > 0
        assert st["view_error"] == 0 and st["view"]["sum_error"] == 0, (broker, st)
        assert st["windows"]["wrong"] == 0 and st["windows"]["late"] == 0, (broker, st)
        t = st["triggers"]
        assert t["expected"] > 0, (broker, t)
        assert t["fired"] == t["expected"] == t["sent"], (broker, t)
        assert t["missed"] == t["spurious"] == t["duplicated"] == t["failed"] == 0, (broker, t)
        assert t["latency_ms"]["count"] == t["sent"]  # every alert acked by the broker
        assert st["freshness_ms"]["count"] == st["events"]["applied"]
        # The final Snapshot carries the comparison for the features panel.
        final = snapshots[-1].broker(broker).stream
        assert final.final and final.view_error == 0 and final.expected == t["expected"]
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
    result, _ = run(session_lab, smoke("redis", dedupe=True), faults=[(3, Fault("crash-consumer"))])
    for broker in BROKERS:
        s = result.brokers[broker].summary
        st = s["stream"]
        assert s["duplicates"] > 0, (broker, s)
        assert st["events"]["deduped"] == s["duplicates"], (broker, st)
        assert st["view_error"] == 0, (broker, st)
        assert st["windows"]["wrong"] == 0, (broker, st)
        t = st["triggers"]
        assert t["fired"] == t["expected"] and t["spurious"] == t["duplicated"] == 0, t


def test_a_pause_makes_late_events_and_only_their_windows_wrong(session_lab):
    """Windows of 4 s, 1 s lateness, the broker paused from 5 s to 13 s: whatever was
    sent in the last part of a window that closed during the pause comes late."""
    data = smoke("redis", windows={"kind": "tumbling", "size": "4s", "allowed_lateness": "1s"})
    data.update(duration="16s", drain_timeout="30s")
    data["stream"].pop("triggers")
    result, _ = run(
        session_lab,
        data,
        brokers=["postgres"],
        faults=[(5, Fault("pause")), (13, Fault("resume"))],
    )
    st = stream_of(result, "postgres")
    w = st["windows"]
    assert w["late"] > 0, st
    # Every wrong window is short by exactly its late events; the view is not windowed.
    assert w["wrong"] == w["wrong_by_late"] > 0, w
    assert w["late_updates"] == w["late"]  # tumbling: one window per event
    assert st["view_error"] == 0, st
    assert st["freshness_ms"]["p99"] >= 2000, st["freshness_ms"]


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
