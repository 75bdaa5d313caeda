"""The lecture's capacity cases, the queue's fluid model and M/M/c, the `lab capacity`
command and the recipe it writes. No brokers here (tests/test_capacity_run.py runs one)."""

import json
import math
import subprocess
import sys

import pytest

from lab.capacity import Workload, fluid, mmc, plan
from lab.capacity.predict import predicted_backlog
from lab.recipes import load

# The lecture: servers of 10 req/s, 1 MB in, 0.01 MB out, 10 requests a user, 8:00-18:00.
LECTURE = {"requests_per_user": 10, "hours": (8, 18), "server_rps": 10.0}
WITHIN = 0.02  # the issue's tolerance


def approx(value):
    return pytest.approx(value, rel=WITHIN)


def test_case_1_thousand_users():
    p = plan(Workload(users=1000, **LECTURE))
    assert p.workload.requests_per_day == 10_000
    assert p.workload.hourly() == [1000] * 10
    assert p.mean_rps == approx(0.28)
    # "about 3 Mbit/s" is the lecture's rounding of 0.28 req/s x 10 Mbit = 2.8 Mbit/s.
    assert p.mbit_in_mean == approx(2.8)
    assert round(p.mbit_in_mean) == 3
    assert p.servers_needed == 1


def test_case_2_ten_thousand_users():
    p = plan(Workload(users=10_000, **LECTURE))
    assert p.workload.requests_per_day == 100_000
    assert p.mean_rps == approx(2.8)
    assert p.mbit_in_mean == approx(28)
    assert p.servers_needed == 1
    # 100,000 / (10 req/s x 86,400 s) = 11.6%: "about 12%" over 24 h.
    assert p.utilization == approx(100_000 / 864_000)
    assert round(p.utilization * 100) == 12


def test_case_3_the_morning_peak():
    p = plan(Workload(users=10_000, peak_share=0.55, **LECTURE))
    first, *rest = p.workload.hourly()
    assert first == approx(55_000)
    assert rest == [approx(5_000)] * 9
    assert p.peak_rps == approx(15.3)
    assert p.mbit_in_peak == approx(153)
    assert p.mean_rps == approx(2.8)  # the daily mean hides the peak
    assert rest[0] / 3600 == approx(1.4)
    assert rest[0] / 3600 * 10 == approx(14)  # Mbit/s after the peak
    assert p.servers_needed == 2  # one is not enough at the peak
    servers = p.servers
    assert servers["count"] == 2 and servers["handles_peak"]
    assert servers["capacity_rps"] == 20
    assert servers["capacity_per_day"] == 1_728_000
    assert servers["utilization"] == approx(100_000 / 1_728_000)
    assert round(servers["utilization"] * 100) == 6
    q = p.queue
    assert q["workers"] == 1
    assert q["backlog_max"] == approx(19_000)
    assert q["max_wait_s"] / 60 == approx(32)
    assert q["drained_after_s"] / 60 == approx(37)


def test_one_server_behind_a_proxy_is_not_enough_for_the_peak():
    p = plan(Workload(users=10_000, peak_share=0.55, servers=1, **LECTURE))
    assert not p.servers["handles_peak"]
    assert p.servers["peak_wait_s"] is None  # unstable: the fluid model's question


def test_json_has_the_issues_keys():
    d = plan(Workload(users=10_000, peak_share=0.55, **LECTURE)).to_dict()
    assert set(d) == {
        "mean_rps",
        "peak_rps",
        "mbit_in_mean",
        "mbit_in_peak",
        "servers_needed",
        "utilization",
        "servers",
        "queue",
        "serverless",
    }
    assert {"backlog_max", "max_wait_s", "drained_after_s"} <= set(d["queue"])
    assert {"capacity_rps", "utilization"} <= set(d["servers"])
    json.dumps(d)


def test_serverless_against_servers_all_day():
    w = Workload(users=10_000, cost_per_request=2e-7, cost_per_server_hour=0.05, **LECTURE)
    s = plan(w).serverless
    assert s["cost_per_day"] == pytest.approx(0.02)
    assert s["servers_cost_per_day"] == pytest.approx(1.2)
    assert s["cheaper"] == "serverless"
    assert s["break_even_requests_per_day"] == pytest.approx(6_000_000)


def test_fluid_backlog_corners():
    b = fluid.backlog([(10, 15), (10, 5)], capacity=10)
    # +5/s for 10 s, then -5/s: empty at 20 s, peak 50 at 10 s.
    assert b.points == [(0, 0), (10, 50), (20, 0)]
    assert (b.peak, b.peak_at, b.drained_at) == (50, 10, 20)
    assert b.max_wait_s == 5
    assert fluid.at(b.points, 15) == 25


def test_fluid_backlog_that_outlasts_the_arrivals():
    b = fluid.backlog([(10, 20)], capacity=10, drain_tail=True)
    assert b.points[-1] == (20, 0)
    assert fluid.backlog([(10, 20)], capacity=10, drain_tail=False).drained_at is None


def test_workers_that_never_catch_up():
    p = plan(Workload(users=10_000_000, **LECTURE))
    assert p.queue["backlog_max"] is None and p.backlog is None


def test_mmc_against_textbook_values():
    # M/M/1: Wq = rho / (mu - lambda).
    assert mmc.mean_wait_s(5, 10, 1) == pytest.approx(0.5 / 5)
    # Erlang C for 2 servers at a = 1 (rho = 0.5) is 1/3.
    assert mmc.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert mmc.mean_wait_s(10, 10, 2) == pytest.approx((1 / 3) / 10)
    assert mmc.mean_wait_s(20, 10, 2) is None
    assert math.isfinite(mmc.erlang_c(500, 450.0))


def lab_capacity(*args):
    return subprocess.run(
        [sys.executable, "-m", "lab", "capacity", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_command_prints_a_table_that_says_ten_bits():
    r = lab_capacity("--users", "10000", "--peak-share", "0.55")
    assert r.returncode == 0, r.stderr
    assert "10 bits per byte" in r.stdout
    assert "19,000 waiting" in r.stdout
    assert "15.3 req/s" in r.stdout


def test_command_json_matches_the_model():
    args = ["--users", "10000", "--requests-per-user", "10", "--hours", "8-18"]
    args += ["--peak-share", "55%", "--request-size", "1MB", "--response-size", "10KB"]
    r = lab_capacity(*args, "--server-rps", "10", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["peak_rps"] == approx(15.3)
    assert d["queue"]["backlog_max"] == approx(19_000)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--users", "many"], "--users: 'many' is not a whole number"),
        (["--hours", "18-8"], "--hours: '18-8' must run forward"),
        (["--request-size", "1 parsec"], "--request-size: '1 parsec' is not a size"),
        (["--peak-share", "1.5"], "--peak-share: '1.5' is more than the whole day"),
        (["--server-rps", "0"], "--server-rps: '0' must be a number larger than 0"),
        (["--users"], "--users: expected one argument"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args, says):
    r = lab_capacity(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert says in lines[0]


def test_a_recipe_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = lab_capacity("--recipe", str(blocker / "day.toml"))
    assert r.returncode == 2 and not r.stdout, (r.stdout, r.stderr)
    [line] = r.stderr.strip().splitlines()
    assert "cannot write the recipe" in line


def test_recipe_loads_and_predicts_the_days_shape(tmp_path):
    path = tmp_path / "day.toml"
    r = lab_capacity("--users", "10000", "--peak-share", "0.55", "--recipe", str(path))
    assert r.returncode == 0, r.stderr
    assert str(path) in r.stdout
    recipe = load(str(path))
    assert recipe.rate.profile == "curve" and len(recipe.rate.curve) == 10
    assert recipe.duration == 100  # 10 hours at 10 s an hour
    # Capacity = workers / processing time: 1 worker at 10 req/s, rates x 10.
    assert recipe.consumers.count / recipe.consumers.processing_time == pytest.approx(100)
    import dataclasses

    b = predicted_backlog(dataclasses.asdict(recipe))
    # The day's 19,000 at 10x the rate and 1/360 of the time.
    assert b.peak == approx(19_000 * 10 / 360)
    assert b.peak_at == pytest.approx(10)
    assert b.drained_after_s == approx(2206.45 / 360)
