"""Delivery patterns on every broker: fire-and-forget's ledger counts from what was sent,
and short polling costs latency where long polling costs calls (issue 13)."""

import pytest

from lab import brokers as registry
from lab.engine.session import Session
from lab.recipes import parse

pytestmark = pytest.mark.brokers

BROKERS = registry.names()


def run_all(session_lab, recipe: dict) -> dict:
    """One parallel run of `recipe` on every broker; its BrokerResults by broker."""
    for broker in BROKERS:
        session_lab.endpoint(broker)
    session = Session(session_lab.runtime, stop_started_brokers=False)
    try:
        session.start(parse(recipe), BROKERS)
        result = session.wait(timeout=300)
    finally:
        session.close()
    assert result is not None
    return result.brokers


def test_fire_and_forget_counts_from_what_was_sent_and_expects_its_losses(session_lab):
    brokers = run_all(
        session_lab,
        {
            "name": "forget",
            "pattern": "fire-and-forget",
            "duration": "10s",
            "warmup": "1s",
            "drain_timeout": "20s",
            "durability": "fast",
            "rate": {"rate": 500},
            # 400 msgs/s of capacity: a backlog waits in the broker when it is killed.
            "consumers": {"processing_time": "2.5ms"},
            "faults": [{"at": "4s", "action": "kill"}, {"at": "6s", "action": "restart"}],
        },
    )
    for name, b in brokers.items():
        s = b.summary
        assert s["adds_up"], (name, s)
        # Handed to the client is acked; only a send the client refused outright is not.
        assert s["acked"] + s["failed"] == s["sent"] > 0, (name, s)
        gone = s["acked"] - s["delivered"] - s["dead_lettered"] - s["retention_dropped"]
        assert s["lost"] == gone - s["in_flight"], (name, s)
        assert b.settings["pattern"].startswith("fire-and-forget: "), (name, b.settings)
        losses = [p for p in b.problems if "lost" in p]
        if s["lost"]:
            assert losses == [
                f"{s['lost']:,} sent messages lost, as fire-and-forget expects: nobody "
                "waited for the broker to take them"
            ], (name, b.problems)
        else:
            assert not losses, (name, b.problems)
    # The brokers that keep messages in memory only lose the backlog the kill found.
    for name in ("rabbitmq", "redis"):
        assert brokers[name].summary["lost"] > 0, (name, brokers[name].summary)


def polling_run(session_lab, poll: str, interval: float) -> dict:
    return run_all(
        session_lab,
        {
            "name": f"poll-{poll}",
            "duration": "8s",
            "warmup": "2s",
            "rate": {"rate": 20},
            "consumers": {"poll": poll, "poll_interval": interval, "prefetch": 100},
        },
    )


def test_short_polling_pays_in_latency_and_long_polling_in_calls(session_lab):
    interval = 0.5
    short = polling_run(session_lab, "short", interval)
    long = polling_run(session_lab, "long", interval)
    for name in BROKERS:
        s, lo = short[name].summary, long[name].summary
        for run in (s, lo):
            assert run["adds_up"] and run["lost"] == 0 and run["delivered"] == 160, (name, run)
        # The floor: a message waits for the next poll, half an interval on average.
        assert s["e2e_latency_ms"]["p50"] >= 0.25 * interval * 1000, (name, s)
        assert lo["e2e_latency_ms"]["p50"] < s["e2e_latency_ms"]["p50"] / 2, (name, lo, s)
        # One call per interval, whatever arrives; a long poll returns per message or batch.
        ran = short[name].series[-1]["t"]
        assert s["receive_calls"] <= ran / interval + 2, (name, s, ran)
        assert s["receive_calls"] < lo["receive_calls"], (name, s, lo)
        assert short[name].settings["poll"].startswith(f"short, every {interval:g}s: ")
        assert long[name].settings["poll"].startswith("long: ")
