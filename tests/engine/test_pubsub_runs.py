"""Process and network faults on Google's Pub/Sub emulator, through the engine: a paused
emulator and a partition in the chaos proxy hold messages up, and lose none."""

import pytest

from lab.faults import Fault
from tests.helpers import run_one

pytestmark = pytest.mark.brokers


def run(session_lab, recipe_data, faults=()):
    result, snapshots = run_one(session_lab, "pubsub", recipe_data, faults)
    broker = result.brokers["pubsub"]
    s = broker.summary
    assert s["adds_up"] and not broker.problems, (s, broker.problems)
    # Neither fault restarts the emulator, so it keeps what it held: nothing is lost.
    assert (s["lost"], s["in_flight"]) == (0, 0), s
    assert s["delivered"] == s["acked"] > 0, s
    # Open-loop: messages sent while nothing moved waited seconds for it.
    assert s["e2e_latency_ms"]["max"] >= 2000, s["e2e_latency_ms"]
    return result, snapshots


def test_a_paused_emulator_is_latency_not_loss(session_lab):
    result, snapshots = run(
        session_lab,
        {"duration": "12s", "rate": {"rate": 150}},
        faults=[(4, Fault("pause")), (7, Fault("resume"))],
    )
    kinds = [e.message.split()[0] for e in result.events if e.kind == "fault"]
    assert kinds[:2] == ["pause", "resume"], kinds
    # Said at once, though a probe of the stopped emulator hangs far longer than the
    # pause: a second press of `p` resumes instead of pausing again.
    paused, resumed = [e.t for e in result.events if e.kind == "fault"][:2]
    during = [s.broker("pubsub").state for s in snapshots if paused + 0.6 < s.t < resumed - 0.1]
    assert during and set(during) == {"paused"}, during
    assert snapshots[-1].broker("pubsub").state == "healthy"


def test_a_network_partition_then_heal(session_lab):
    result, snapshots = run(
        session_lab,
        {"duration": "12s", "rate": {"rate": 150}, "drain_timeout": "40s"},
        faults=[(4, Fault("blackhole")), (7, Fault("heal"))],
    )
    assert any("blackhole" in snap.broker("pubsub").network for snap in snapshots)
    kinds = [e.message.split()[0] for e in result.events if e.kind == "fault"]
    assert kinds[:2] == ["blackhole", "heal"], kinds
