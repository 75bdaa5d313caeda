"""Faults on every broker: the ledger still accounts for every acked message exactly."""

import pytest

from lab.app import dlq
from lab.engine.session import Session
from lab.faults import Fault
from lab.recipes import parse

pytestmark = pytest.mark.brokers
ALL = ["kafka", "rabbitmq", "redis", "postgres"]


def run(session_lab, recipe_data, brokers=ALL, faults=()):
    for broker in brokers:
        session_lab.endpoint(broker)
    recipe = parse({"name": "fault-test", "warmup": "1s", **recipe_data})
    session = Session(session_lab.runtime, stop_started_brokers=False)
    session.start(recipe, brokers, "parallel", faults)
    snapshots = list(session.snapshots())
    result = session.wait(timeout=120)
    session.close()
    workers = [w for r in session.runs for w in r.workers]
    assert not [w for w in workers if w.alive()], "a worker outlived its run"
    for broker in brokers:
        # Whatever a fault did to it, the broker is healthy again for the next test.
        session_lab.runtime.up([broker])
    return result, snapshots, session


def assert_accounted(result, broker):
    s = result.brokers[broker].summary
    assert s["adds_up"], (broker, s)
    assert s["in_flight"] == 0, (broker, s)
    return s


def test_kill_and_restart_loses_no_acked_message(session_lab):
    result, _, _ = run(
        session_lab,
        {"duration": "14s", "rate": {"rate": 200}, "durability": "safe"},
        faults=[(4, Fault("kill")), (7, Fault("restart"))],
    )
    for broker in ALL:
        s = assert_accounted(result, broker)
        assert s["lost"] == 0, (broker, s)
        assert s["delivered"] == s["acked"] > 0, (broker, s)
        kinds = [
            e.message.split()[0] for e in result.events if e.broker == broker and e.kind == "fault"
        ]
        assert kinds[:2] == ["kill", "restart"], (broker, kinds)
    assert any(e.kind == "state" and "killed" in e.message for e in result.events)


def test_redis_without_persistence_loses_exactly_what_it_reports(session_lab):
    """Memory-only Redis ("fast"): a kill loses the backlog. The lab's count of lost
    messages must equal the truth, worked out from the raw producer acks and consumer
    receipts, and confirmed against what Redis holds after the restart."""
    result, _, session = run(
        session_lab,
        {
            "duration": "10s",
            "durability": "fast",
            "drain_timeout": "15s",
            "rate": {"rate": 300},
            "consumers": {"processing_time": "5ms", "prefetch": 20},
        },
        brokers=["redis"],
        faults=[(5, Fault("kill")), (6, Fault("restart"))],
    )
    s = result.brokers["redis"].summary
    ledger = session.ledger("redis")
    acked, received = set(ledger.acked), set(ledger.delivered)
    truth = acked - received
    assert truth, "the backlog at the kill should have been lost"
    assert s["lost"] == len(truth)
    assert s["adds_up"]
    import redis as redis_py

    ep = session_lab.endpoint("redis")
    client = redis_py.Redis(host=ep.host, port=ep.port, password=ep.password)
    try:
        # The run's stream was deleted at teardown; what a restart without persistence
        # left is an empty Redis, not our messages somewhere else.
        assert not client.keys(f"lab-{result.run_id}*")
    finally:
        client.close()


def test_a_broker_that_stays_down_still_ends_the_run(session_lab):
    """Producers catch up after an outage, but not forever: drain_timeout after the end
    they are stopped, the run ends and says so, and the books still balance."""
    result, _, _ = run(
        session_lab,
        {"duration": "4s", "drain_timeout": "3s", "rate": {"rate": 200}},
        brokers=["redis"],
        faults=[(2, Fault("kill"))],
    )
    s = result.brokers["redis"].summary
    assert s["adds_up"], s
    assert 0 < s["acked"] < 200 * 4, s  # what was sent before the kill
    # The broker cannot be asked at the end: what it still held is in flight, not lost.
    assert s["lost"] == 0 and s["delivered"] + s["in_flight"] == s["acked"], s
    errors = [e.message for e in result.events if e.kind == "error" and e.broker == "redis"]
    assert any("stopping them" in m for m in errors), errors


def test_pause_shows_up_as_latency_not_loss(session_lab):
    result, _, _ = run(
        session_lab,
        {"duration": "12s", "rate": {"rate": 200}},
        faults=[(4, Fault("pause")), (7, Fault("resume"))],
    )
    for broker in ALL:
        s = assert_accounted(result, broker)
        assert s["lost"] == 0 and s["delivered"] == s["acked"], (broker, s)
        # Open-loop: a 3 s freeze shows as seconds of latency on messages sent meanwhile.
        assert s["e2e_latency_ms"]["max"] >= 2000, (broker, s["e2e_latency_ms"])


def test_consumer_crash_redelivers_as_duplicates(session_lab):
    result, _, _ = run(
        session_lab,
        {
            "duration": "12s",
            "rate": {"rate": 150},
            "consumers": {"processing_time": "4ms", "prefetch": 20},
            "redis": {"claim_idle": "1s"},
        },
        faults=[(4, Fault("crash-consumer"))],
    )
    for broker in ALL:
        s = assert_accounted(result, broker)
        assert s["lost"] == 0 and s["delivered"] == s["acked"], (broker, s)
        # Killed between receiving a batch and acking it: that batch comes again.
        assert s["duplicates"] > 0, (broker, s)
        assert any("restarted as" in e.message for e in result.events if e.broker == broker)


def test_poison_messages_end_in_the_dead_letter_queue(session_lab):
    result, _, _ = run(
        session_lab,
        {"duration": "6s", "rate": {"rate": 150}, "poison_share": 0.1, "max_attempts": 3},
    )
    runtime = session_lab.runtime
    for broker in ALL:
        s = assert_accounted(result, broker)
        assert s["lost"] == 0, (broker, s)
        assert s["poison_acked"] > 0
        assert s["dead_lettered"] == s["poison_acked"], (broker, s)
        assert s["delivered"] + s["dead_lettered"] == s["acked"], (broker, s)
        adapter = dlq.adapter_for_run(runtime, broker, result.run_id)
        try:
            letters = adapter.dead_letters(10_000)
            assert len(letters) == s["dead_lettered"], broker
            assert all(d.attempts == 3 and d.reason.startswith("poison") for d in letters)
            assert all(d.first_failure <= d.last_failure for d in letters)
            # Redrive empties the dead-letter queue into the main queue.
            assert adapter.redrive() == len(letters)
            assert adapter.dead_letters(10) == []
            assert adapter.probe(final=True).depth == len(letters)
        finally:
            adapter.teardown()
            adapter.close()
            dlq.forget(runtime.settings.state_dir, result.run_id, broker)


def test_retention_drops_are_named_not_guessed(session_lab):
    result, _, _ = run(
        session_lab,
        {
            "duration": "16s",
            "warmup": "0s",
            "partitions": 1,
            "rate": {"rate": 300},
            "consumers": {"processing_time": "8ms", "prefetch": 10},
            "retention": {"max_age": "3s"},
            "drain_timeout": "30s",
        },
    )
    for broker in ALL:
        s = assert_accounted(result, broker)
        assert s["retention_dropped"] > 0, (broker, s)
        # Everything not delivered was deleted by retention, and the broker said which.
        assert s["lost"] == 0, (broker, s)
        assert s["delivered"] + s["retention_dropped"] == s["acked"], (broker, s)


def test_peak_and_burst(session_lab):
    result, _, _ = run(
        session_lab,
        {"duration": "10s", "warmup": "0s", "rate": {"rate": 100}},
        brokers=["redis"],
        faults=[
            (3, Fault("peak", None, {"x": 5, "for": 3})),
            (8, Fault("burst", None, {"n": 400})),
        ],
    )
    sent = result.brokers["redis"].per_second["sent"]
    assert sent[1] == pytest.approx(100, abs=5)
    assert sent[4] == pytest.approx(500, rel=0.1), sent
    assert sent[8] == pytest.approx(500, abs=20), sent
    s = assert_accounted(result, "redis")
    assert s["delivered"] == s["acked"] == sum(sent)


def test_network_partition_then_heal(session_lab):
    result, _, _ = run(
        session_lab,
        {"duration": "12s", "rate": {"rate": 150}, "drain_timeout": "40s"},
        faults=[(4, Fault("blackhole")), (7, Fault("heal"))],
    )
    for broker in ALL:
        s = assert_accounted(result, broker)
        assert s["lost"] == 0 and s["delivered"] == s["acked"] > 0, (broker, s)
        # Nothing got through for 3 s: messages sent then waited at least that long.
        assert s["e2e_latency_ms"]["max"] >= 2000, (broker, s["e2e_latency_ms"])


def test_latency_and_reset(session_lab):
    result, _, _ = run(
        session_lab,
        {"duration": "10s", "warmup": "3s", "rate": {"rate": 100}},
        faults=[(1, Fault("latency", None, {"ms": 60})), (6, Fault("reset"))],
    )
    for broker in ALL:
        s = assert_accounted(result, broker)
        assert s["lost"] == 0 and s["delivered"] == s["acked"] > 0, (broker, s)
        # 60 ms each way: no acknowledgement can come back sooner than that.
        assert s["publish_latency_ms"]["p50"] >= 60, (broker, s["publish_latency_ms"])


def test_the_remaining_faults_keep_the_books(session_lab):
    """Bandwidth cap, slow consumers, consumers added and removed, a burst: every broker
    still accounts for every message, and each fault is an event."""
    result, _, _ = run(
        session_lab,
        {"duration": "12s", "rate": {"rate": 150}, "drain_timeout": "40s"},
        faults=[
            (2, Fault("bandwidth", None, {"kbps": 20})),
            (3, Fault("slow-consumers", None, {"factor": 5})),
            (4, Fault("add-consumer")),
            (5, Fault("burst", None, {"n": 300})),
            (6, Fault("heal")),
            (7, Fault("slow-consumers", None, {"factor": 1})),
            (8, Fault("remove-consumer")),
        ],
    )
    for broker in ALL:
        s = assert_accounted(result, broker)
        assert s["lost"] == 0 and s["delivered"] == s["acked"], (broker, s)
        assert s["acked"] == 150 * 12 + 300, (broker, {k: v for k, v in s.items() if "ms" not in k})
        actions = {e.message.split()[0] for e in result.events if e.broker == broker}
        assert {"bandwidth", "slow-consumers", "add-consumer", "burst", "heal"} <= actions
