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


def test_lost_acked_messages_are_said_aloud_and_results_are_readable_by_all(session_lab, tmp_path):
    """Redis without AOF killed under a backlog: the loss is a problem line in the live
    output and in the results, saying the durability predicted it (issue 10, items 6, 10)."""
    session_lab.endpoint("redis")
    recipe = tmp_path / "loss.toml"
    recipe.write_text(
        'name = "loss"\nduration = 8\nwarmup = 1\ndrain_timeout = 10\ndurability = "fast"\n'
        "[rate]\nrate = 1000\n[consumers]\nprocessing_time = 0.005\n"
        '[[faults]]\nat = 4\naction = "kill"\n[[faults]]\nat = 5\naction = "restart"\n'
    )
    out = tmp_path / "results"
    settings = session_lab.runtime.settings
    args = ("run", str(recipe), "--brokers", "redis", "--out", str(out))
    done = run_lab(settings, *args, timeout=180)
    assert done.returncode == 0, done.stderr
    [path] = out.glob("*.json")
    data = json.loads(path.read_text())
    lost = data["brokers"]["redis"]["summary"]["lost"]
    assert lost > 0, data["brokers"]["redis"]["summary"]
    said = f"redis: {lost:,} acknowledged messages lost, as durability fast: Redis without"
    text = " ".join(done.stdout.split())  # the console wraps long lines at its width
    assert f"problem: {said}" in text, done.stdout[-2000:]
    assert any(p.startswith(said) for p in data["problems"]), data["problems"]
    assert path.stat().st_mode & 0o777 == 0o644
