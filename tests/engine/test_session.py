"""The engine on real brokers: exact ledgers, latencies, rates, lag that builds and drains."""

import itertools

import pytest

from lab.engine.session import Session
from lab.recipes import parse

pytestmark = pytest.mark.brokers
ALL = ["kafka", "rabbitmq", "redis", "postgres"]


def run(session_lab, recipe, brokers=ALL, mode="parallel"):
    for broker in brokers:
        session_lab.endpoint(broker)  # up before the clock starts
    session = Session(session_lab.runtime, stop_started_brokers=False)
    session.start(recipe, brokers, mode)
    snapshots = list(session.snapshots())
    result = session.wait(timeout=60)
    session.close()
    assert result is not None
    return result, snapshots


WARMUP, DURATION = 2, 8  # seconds, of the quickstart below


def quickstart(duration=f"{DURATION}s"):
    return parse(
        {
            "name": "quickstart-test",
            "duration": duration,
            "warmup": f"{WARMUP}s",
            "rate": {"rate": 400},
            "message": {"size": 100},
        }
    )


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_quickstart_every_message_exactly_once(session_lab, mode):
    result, snapshots = run(session_lab, quickstart(), mode=mode)
    assert result.mode == mode
    assert not result.problems, result.problems
    for broker in ALL:
        s = result.brokers[broker].summary
        assert s["acked"] == s["produced"] == 400 * 8, (broker, s)
        assert s["delivered"] == s["acked"], (broker, s)
        assert (s["lost"], s["duplicates"], s["in_flight"]) == (0, 0, 0), (broker, s)
        assert s["adds_up"]
        for kind in ("publish_latency_ms", "e2e_latency_ms"):
            lat = s[kind]
            assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], (broker, kind, lat)
        # The lab sends at the recipe's rate, second by second...
        sent = result.brokers[broker].per_second["sent"][WARMUP:DURATION]
        assert sum(sent) / len(sent) == pytest.approx(400, rel=0.02), (broker, sent)
        # ...and the broker acks them: counted in the second each ack arrived, so an ack up
        # to `max` late can cross either edge of the measured seconds (a cold Kafka's JIT
        # held some back 0.5 s here). Beyond that slack, within 5%.
        slack = 2 * 400 * s["publish_latency_ms"]["max"] / 1000 / (DURATION - WARMUP)
        assert abs(s["produce_rate"] - 400) <= 0.05 * 400 + slack, (broker, s["produce_rate"])
        assert result.brokers[broker].settings
        assert result.environment["brokers"][broker]
        assert result.environment["clients"][broker]
    # Snapshots come at the cadence, and each carries every broker.
    # Every half second; two cores shared by seven brokers stalled the clock for 1.15 s once
    # in CI (a 1.65 s gap), so a gap is a stall only past 2 s.
    gaps = [round(b.t - a.t, 2) for a, b in itertools.pairwise(snapshots)]
    assert max(gaps) < 2.0, gaps
    assert all(len(s.brokers) == len(ALL) for s in snapshots)


def test_sequential_runs_one_broker_at_a_time(session_lab):
    result, snapshots = run(session_lab, quickstart("4s"), ["redis", "postgres"], "sequential")
    busy = [
        {b.broker for b in s.brokers if b.phase in ("warmup", "running", "draining")}
        for s in snapshots
    ]
    assert all(len(names) <= 1 for names in busy)
    assert {"redis"} in busy and {"postgres"} in busy
    for broker in ("redis", "postgres"):
        assert result.brokers[broker].summary["delivered"] == 400 * 4


def test_slow_consumer_builds_lag_that_drains(session_lab):
    recipe = parse(
        {
            "name": "slow-test",
            "duration": "6s",
            "warmup": "0s",
            "drain_timeout": "40s",
            "rate": {"rate": 300},
            "consumers": {"count": 1, "processing_time": "5ms", "prefetch": 20},
        }
    )
    result, snapshots = run(session_lab, recipe)
    for broker in ALL:
        lags = [(s.t, s.broker(broker)) for s in snapshots]
        during = [b.lag for _, b in lags if b.phase == "running" and b.lag is not None]
        # 300/s in, about 200/s out: the backlog grows by ~100 a second.
        assert max(during) >= 200, (broker, during)
        assert during[-1] > during[0], (broker, during)
        final = snapshots[-1].broker(broker)
        assert final.lag == 0, (broker, final)
        s = result.brokers[broker].summary
        assert s["delivered"] == s["acked"] == 300 * 6, (broker, s)
        assert s["max_lag"] >= 200
        # Queueing shows up as end-to-end latency far above the publish latency.
        assert s["e2e_latency_ms"]["p99"] > 5 * s["publish_latency_ms"]["p99"], (broker, s)


def test_rate_profile_shape_through_a_broker(session_lab):
    recipe = parse(
        {
            "name": "spike-test",
            "duration": "6s",
            "warmup": "0s",
            "rate": {"profile": "spike", "rate": 200, "peak": 1000, "start": "2s", "length": "2s"},
        }
    )
    result, _ = run(session_lab, recipe, ["redis"])
    sent = result.brokers["redis"].per_second["sent"]
    # Sends are counted in the second they left. A start held up by a busy machine sends
    # late and catches up in the next second (open loop), so the base is checked over the
    # two seconds before the spike; the spike and what follows it second by second.
    assert sent[0] + sent[1] == pytest.approx(400, rel=0.05), sent
    assert sent[2:6] == pytest.approx([1000, 1000, 200, 200], rel=0.05), sent


def test_commands_change_a_running_session(session_lab):
    from lab.engine.commands import Stop
    from lab.faults import Fault

    recipe = parse({"name": "cmd-test", "duration": "60s", "warmup": "0s", "rate": {"rate": 200}})
    session_lab.endpoint("redis")
    session = Session(session_lab.runtime, stop_started_brokers=False)
    session.start(recipe, ["redis"])
    sent_commands = False
    for snap in session.snapshots():
        b = snap.broker("redis")
        if b.phase == "running" and snap.t > 3 and not sent_commands:
            session.command(Fault("rate", args={"x": 3.0}))
            session.command(Fault("add-consumer"))
            sent_commands = True
            stop_at = snap.t + 3
        if sent_commands and snap.t >= stop_at:
            session.command(Stop())
    result = session.wait(30)
    session.close()
    redis = result.brokers["redis"]
    assert redis.summary["lost"] == 0 and redis.summary["delivered"] == redis.summary["acked"]
    assert max(redis.per_second["sent"]) == pytest.approx(600, rel=0.1)
    assert max(p["target_rate"] for p in redis.series) == pytest.approx(600)
    assert any(e.kind == "fault" and "add-consumer" in e.message for e in result.events)
    assert result.duration_s < 30  # stopped early
