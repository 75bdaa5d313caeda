"""Losses said aloud, and durability settings that hold across restarts, on real brokers."""

import pytest

from lab.brokers.contract import RunSpec
from lab.endpoints import Endpoint
from lab.engine.broker_run import BrokerRun
from lab.engine.session import Session
from lab.recipes import parse

pytestmark = pytest.mark.brokers


def crash_run(session_lab, durability: str):
    """Redis killed and restarted while a slow consumer leaves thousands unconsumed."""
    session_lab.endpoint("redis")
    recipe = parse(
        {
            "name": f"loss-{durability}",
            "duration": "8s",
            "warmup": "1s",
            "drain_timeout": "10s",
            "durability": durability,
            "rate": {"rate": 1000},
            "consumers": {"processing_time": "5ms"},
            "faults": [{"at": "4s", "action": "kill"}, {"at": "5s", "action": "restart"}],
        }
    )
    session = Session(session_lab.runtime, stop_started_brokers=False)
    session.start(recipe, ["redis"])
    result = session.wait(timeout=120)
    session.close()
    assert result is not None
    return result, result.brokers["redis"]


def test_acked_messages_lost_as_fast_durability_predicts_are_a_problem_line(session_lab):
    result, redis = crash_run(session_lab, "fast")
    lost = redis.summary["lost"]
    assert lost > 0, redis.summary  # Redis without AOF: what it held in memory is gone
    said = f"{lost:,} acknowledged messages lost, as durability fast: Redis without its"
    assert any(p.startswith(said) for p in redis.problems), redis.problems
    assert any(p.startswith(f"redis: {said}") for p in result.problems), result.problems
    assert any(e.kind == "error" and e.message.startswith(said) for e in result.events)
    # The restart started Redis from redis.conf (appendonly yes): the run set it back.
    reads = [(r["when"], r["settings"]["appendonly"]) for r in redis.settings_read]
    assert reads == [("start", "no"), ("after restart", "no"), ("end", "no")], reads


def test_safe_durability_survives_the_restart_and_loses_nothing(session_lab):
    result, redis = crash_run(session_lab, "safe")
    assert redis.summary["lost"] == 0 and redis.summary["adds_up"], redis.summary
    assert not [p for p in result.problems if "lost" in p], result.problems
    reads = [(r["when"], r["settings"]) for r in redis.settings_read]
    always = {"appendonly": "yes", "appendfsync": "always"}
    assert reads == [("start", always), ("after restart", always), ("end", always)], reads


def test_a_loss_the_durability_did_not_predict_is_a_broken_promise():
    recipe = parse({"durability": "safe"})
    run = BrokerRun(RunSpec("r1", "redis", Endpoint("redis", "redis", "127.0.0.1", 9), recipe))
    assert run.loss_problem(3).startswith("BROKEN PROMISE: 3 acknowledged messages lost")
    fast = parse({"durability": "fast"})
    run = BrokerRun(RunSpec("r1", "redis", Endpoint("redis", "redis", "127.0.0.1", 9), fast))
    assert run.loss_problem(3).startswith("3 acknowledged messages lost, as durability fast")


def test_rabbitmq_reads_its_settings_back_at_start_after_a_restart_and_at_the_end(session_lab):
    session_lab.endpoint("rabbitmq")
    recipe = parse(
        {
            "name": "rabbitmq-settings",
            "duration": "8s",
            "warmup": "1s",
            "rate": {"rate": 200},
            "faults": [{"at": "3s", "action": "restart"}],
        }
    )
    session = Session(session_lab.runtime, stop_started_brokers=False)
    session.start(recipe, ["rabbitmq"])
    result = session.wait(timeout=180)
    session.close()
    assert result is not None
    rabbitmq = result.brokers["rabbitmq"]
    reads = [(r["when"], r["settings"]) for r in rabbitmq.settings_read]
    assert [when for when, _ in reads] == ["start", "after restart", "end"], reads
    durable = {"queue_type": "classic", "queue_durable": "true"}
    for when, found in reads:
        assert durable.items() <= found.items(), (when, found)
    assert not [e for e in result.events if "settings differ" in e.message], result.events
