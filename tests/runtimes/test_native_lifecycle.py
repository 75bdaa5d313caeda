"""Each broker through its whole life on the native runtime, with a real message."""

import os

import psutil
import pytest

from lab import brokers as registry
from lab.runtimes import BrokerState
from tests.helpers import leftovers
from tests.runtimes.roundtrip import ROUNDTRIP

pytestmark = pytest.mark.brokers


def state_of(runtime, broker):
    [status] = runtime.status([broker], sample_seconds=0.1)
    return status


# Every registered broker, so a new one is covered by being added (with its round trip).
@pytest.mark.parametrize("broker", registry.names())
def test_up_message_kill_restart_down(fresh_lab, broker):
    assert broker in ROUNDTRIP, f"tests/runtimes/roundtrip.py has no round trip for {broker}"
    [status] = fresh_lab.up([broker])
    assert status.state is BrokerState.HEALTHY, status
    assert status.pid and status.version and status.rss_bytes > 0

    payload = os.urandom(16)
    assert ROUNDTRIP[broker](fresh_lab.endpoint(broker), payload) == payload

    fresh_lab.kill(broker)
    killed = state_of(fresh_lab, broker)
    assert killed.state is BrokerState.KILLED
    assert "SIGKILL" in killed.detail
    assert not fresh_lab.health(broker)

    restarted = fresh_lab.restart(broker)
    assert restarted.state is BrokerState.HEALTHY
    assert restarted.pid != status.pid
    payload = os.urandom(16)
    assert ROUNDTRIP[broker](fresh_lab.endpoint(broker), payload) == payload

    fresh_lab.down([broker])
    assert state_of(fresh_lab, broker).state is BrokerState.STOPPED
    assert leftovers(fresh_lab.settings) == []


def test_pause_and_resume(fresh_lab):
    fresh_lab.up(["redis"])
    fresh_lab.pause("redis")
    status = state_of(fresh_lab, "redis")
    assert status.state is BrokerState.PAUSED
    assert not fresh_lab.health("redis")  # frozen: the probe times out
    fresh_lab.resume("redis")
    assert state_of(fresh_lab, "redis").state is BrokerState.HEALTHY


def test_stats_and_logs(fresh_lab):
    fresh_lab.up(["postgres"])
    stats = fresh_lab.stats("postgres")
    # PostgreSQL is a postmaster plus its workers: all of them count.
    assert stats.rss_bytes > 10 * 2**20
    assert "database system is ready to accept connections" in fresh_lab.logs("postgres")


def test_crash_outside_the_lab_is_reported_and_cleaned(fresh_lab):
    """A broker that dies on its own leaves a stale pid file: status notices and cleans it."""
    [status] = fresh_lab.up(["redis"])
    redis = psutil.Process(status.pid)
    os.kill(status.pid, 9)
    # SIGKILL takes a moment to end a process; until then status rightly says unhealthy.
    redis.wait(10)
    after = state_of(fresh_lab, "redis")
    assert after.state is BrokerState.KILLED
    assert "exited unexpectedly" in after.detail
    assert not (fresh_lab.brokers["redis"].dir / "pids.json").exists()
    assert fresh_lab.up(["redis"])[0].state is BrokerState.HEALTHY
