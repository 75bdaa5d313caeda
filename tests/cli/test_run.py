"""`lab run` as a user runs it: a live view, a summary, a results file, exit 0."""

import json

import pytest

from tests.helpers import run_lab

pytestmark = pytest.mark.brokers


def test_lab_run_writes_results(session_lab, tmp_path):
    session_lab.endpoint("redis")
    settings = session_lab.runtime.settings
    out = tmp_path / "results"
    done = run_lab(
        settings,
        "run",
        "quickstart",
        "--brokers",
        "redis",
        "--duration",
        "5s",
        "--out",
        str(out),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "delivered" in done.stdout and "results:" in done.stdout
    [path] = out.glob("*.json")
    data = json.loads(path.read_text())
    assert data["run_id"] == path.stem
    assert data["mode"] == "parallel"
    assert data["recipe"]["name"] == "quickstart" and data["recipe"]["duration"] == 5
    env = data["environment"]
    assert env["brokers"]["redis"] and env["clients"]["redis"] and env["cpu_count"] >= 1
    summary = data["brokers"]["redis"]["summary"]
    for key in (
        "produced",
        "acked",
        "delivered",
        "duplicates",
        "dead_lettered",
        "retention_dropped",
        "in_flight",
        "lost",
        "produce_rate",
        "consume_rate",
        "max_lag",
    ):
        assert key in summary, key
    for key in ("publish_latency_ms", "e2e_latency_ms"):
        assert set(summary[key]) >= {"p50", "p95", "p99", "max"}
    assert summary["delivered"] == summary["acked"] > 0
    assert data["brokers"]["redis"]["series"], "the time series behind the live view"


def test_lab_run_bad_recipe_is_one_line(session_lab, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[rate]\nprofile = "stedy"\n')
    done = run_lab(session_lab.runtime.settings, "run", str(bad))
    assert done.returncode == 2
    assert "rate.profile" in done.stderr and "Traceback" not in done.stderr
