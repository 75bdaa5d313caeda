"""Runs on Kinesis: the engine hands out shards as consumers crash, come and go, and the
ledger still accounts for every acked message exactly."""

import pytest

from lab.app import dlq
from lab.faults import Fault
from tests.helpers import run_one

pytestmark = pytest.mark.brokers


def run(session_lab, recipe_data, faults=()):
    return run_one(session_lab, "kinesis", recipe_data, faults)


def exact(result):
    s = result.brokers["kinesis"].summary
    assert s["adds_up"] and not result.brokers["kinesis"].problems, s
    assert (s["in_flight"], s["lost"]) == (0, 0), s
    return s


def test_shards_move_when_consumers_crash_come_and_go(session_lab):
    result, snapshots = run(
        session_lab,
        {
            "duration": "14s",
            "partitions": 6,
            "rate": {"rate": 300},
            "consumers": {"count": 2, "processing_time": "2ms", "prefetch": 20},
        },
        faults=[
            (3, Fault("add-consumer")),
            (5, Fault("crash-consumer")),
            (8, Fault("remove-consumer")),
            (10, Fault("add-consumer")),
        ],
    )
    s = exact(result)
    assert s["delivered"] == s["acked"] == 300 * 14, s
    # Killed between receiving a batch and acking it: the new owner reads it again.
    assert s["duplicates"] > 0, s
    assert any("restarted as" in e.message for e in result.events if e.broker == "kinesis")
    assert {snap.broker("kinesis").consumers for snap in snapshots} >= {2, 3}


def test_a_killed_server_loses_no_acked_record(session_lab):
    result, _ = run(
        session_lab,
        {"duration": "14s", "rate": {"rate": 200}, "durability": "safe"},
        faults=[(4, Fault("kill")), (7, Fault("restart"))],
    )
    s = exact(result)
    assert s["delivered"] == s["acked"] > 0, s
    assert s["failed"] > 0, "sends during the outage fail, and are not acked"


def test_poison_records_end_in_the_dead_letter_stream_and_come_back(session_lab):
    result, _ = run(
        session_lab,
        {
            "duration": "8s",
            "rate": {"rate": 150},
            "poison_share": 0.1,
            "max_attempts": 3,
            "consumers": {"count": 2},
        },
    )
    s = exact(result)
    assert s["poison_acked"] > 0 and s["dead_lettered"] == s["poison_acked"], s
    assert s["delivered"] + s["dead_lettered"] == s["acked"], s
    runtime = session_lab.runtime
    adapter = dlq.adapter_for_run(runtime, "kinesis", result.run_id)
    try:
        letters = adapter.dead_letters(10_000)
        assert len(letters) == s["dead_lettered"]
        assert all(d.attempts == 3 and d.reason.startswith("poison") for d in letters)
        assert all(d.first_failure <= d.last_failure for d in letters)
        assert adapter.probe(final=True).dead_letters == len(letters)
        assert adapter.redrive() == len(letters)
        assert adapter.dead_letters(10) == []
        probe = adapter.probe(final=True)
        assert (probe.depth, probe.dead_letters) == (len(letters), 0)
    finally:
        adapter.teardown()
        adapter.close()
        dlq.forget(runtime.settings.state_dir, result.run_id, "kinesis")


def test_a_retention_squeeze_keeps_every_record_for_a_day(session_lab):
    """retention-squeeze, shortened: Kinesis keeps records 24 h at the least, so a consumer
    that falls behind loses nothing; what is left at the end is still in the stream."""
    result, snapshots = run(
        session_lab,
        {
            "duration": "10s",
            "warmup": "0s",
            "partitions": 1,
            "drain_timeout": "2s",
            "rate": {"rate": 300},
            "consumers": {"processing_time": "6.6ms", "prefetch": 20},
            "retention": {"max_age": "3s"},
        },
    )
    broker = result.brokers["kinesis"]
    s = broker.summary
    assert s["adds_up"] and s["lost"] == 0 and s["retention_dropped"] == 0, s
    assert s["in_flight"] > 0, "the backlog outlives the drain, still held by the stream"
    assert s["delivered"] + s["in_flight"] == s["acked"], s
    assert "RetentionPeriodHours = 24 for max_age 3 s" in broker.settings["retention"]
    assert max(snap.broker("kinesis").lag or 0 for snap in snapshots) > 100


def test_a_network_partition_then_heal(session_lab):
    result, _ = run(
        session_lab,
        {"duration": "12s", "rate": {"rate": 150}, "drain_timeout": "40s"},
        faults=[(4, Fault("blackhole")), (7, Fault("heal"))],
    )
    s = exact(result)
    assert s["delivered"] == s["acked"] > 0, s
    assert s["e2e_latency_ms"]["max"] >= 2000, s["e2e_latency_ms"]


def test_a_paused_server_is_latency_not_loss(session_lab):
    result, _ = run(
        session_lab,
        {"duration": "12s", "rate": {"rate": 150}},
        faults=[(4, Fault("pause")), (6, Fault("resume"))],
    )
    s = exact(result)
    assert s["delivered"] == s["acked"] > 0, s
