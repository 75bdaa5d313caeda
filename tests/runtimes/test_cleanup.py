"""Nothing the lab starts survives `lab down`, Ctrl-C, a failed start, or a kill -9 of the lab."""

import json
import signal
import subprocess
import sys
import time

import pytest

from lab import brokers as registry
from tests.helpers import isolated_lab, lab_env, leftovers, port_block, run_lab

pytestmark = pytest.mark.brokers


@pytest.fixture
def settings():
    with isolated_lab(port_base=port_block("cleanup")) as s:
        yield s


def start_lab(settings, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "lab", *args],
        env=lab_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_pidfiles(settings, brokers, timeout=30):
    deadline = time.monotonic() + timeout
    files = [settings.broker_dir(b) / "pids.json" for b in brokers]
    while not all(f.exists() for f in files):
        assert time.monotonic() < deadline, "the lab never started the brokers"
        time.sleep(0.05)


def test_up_status_down_through_the_cli(settings):
    up = run_lab(settings, "up")
    assert up.returncode == 0, up.stderr
    status = run_lab(settings, "status", "--json")
    assert status.returncode == 0, status.stderr
    every = json.loads(status.stdout)
    # `up` starts the default brokers; status lists every broker the lab knows.
    assert [r["broker"] for r in every] == list(registry.names())
    rows = [r for r in every if r["broker"] in registry.default_names()]
    assert [r["broker"] for r in rows] == ["kafka", "rabbitmq", "redis", "postgres"]
    assert {r["state"] for r in every if r not in rows} == {"stopped"}
    for row in rows:
        assert row["runtime"] == "native"
        assert row["state"] == "healthy", row
        assert row["endpoint"].startswith(("kafka://", "amqp://", "redis://", "postgresql://"))
        assert row["pid"] > 0 and row["rss_bytes"] > 0
        assert row["cpu_percent"] >= 0
        assert row["version"]
    secrets_ = [
        (settings.broker_dir(b) / "secret").read_text().strip()
        for b in ("rabbitmq", "redis", "postgres")
    ]
    for secret in secrets_:
        assert secret not in status.stdout, "a generated password leaked into lab status"
    down = run_lab(settings, "down")
    assert down.returncode == 0, down.stderr
    assert leftovers(settings) == []
    rows = json.loads(run_lab(settings, "status", "--json").stdout)
    assert {r["state"] for r in rows} == {"stopped"}


def test_kill_9_of_the_lab_then_down(settings):
    lab = start_lab(settings, "up", "rabbitmq", "kafka")
    wait_for_pidfiles(settings, ["rabbitmq", "kafka"])
    lab.send_signal(signal.SIGKILL)
    lab.wait()
    assert leftovers(settings), "the brokers should still be running after the lab died"
    down = run_lab(settings, "down")
    assert down.returncode == 0, down.stderr
    assert leftovers(settings) == []


def test_kill_9_of_the_lab_then_up(settings):
    lab = start_lab(settings, "up", "rabbitmq")
    wait_for_pidfiles(settings, ["rabbitmq"])
    lab.send_signal(signal.SIGKILL)
    lab.wait()
    up = run_lab(settings, "up", "rabbitmq")
    assert up.returncode == 0, up.stderr
    assert "healthy" in up.stdout
    beams = [p for p in leftovers(settings) if p.startswith("beam")]
    assert len(beams) == 1, f"expected the one RabbitMQ node, found {beams}"


def test_ctrl_c_during_up_stops_what_it_started(settings):
    lab = start_lab(settings, "up", "rabbitmq", "redis")
    wait_for_pidfiles(settings, ["rabbitmq"])
    lab.send_signal(signal.SIGINT)
    _, err = lab.communicate(timeout=60)
    assert lab.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert leftovers(settings) == []


def test_failed_start_leaves_nothing(settings):
    assert run_lab(settings, "up", "postgres").returncode == 0
    assert run_lab(settings, "down", "postgres").returncode == 0
    conf = settings.broker_dir("postgres") / "data" / "postgresql.conf"
    conf.write_text(conf.read_text() + "\nthis is not a setting\n")
    up = run_lab(settings, "up", "postgres")
    assert up.returncode == 2
    assert "postgres exited while starting" in up.stderr
    assert "Traceback" not in up.stderr
    assert leftovers(settings) == []
