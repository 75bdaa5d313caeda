"""`lab export RUN.json --csv DIR`: the series, per-second counts and summary as CSV that
reads back into exactly the JSON's values."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.export import FORMATS, export
from lab.export.csv import read_run, write_csv
from lab.results import RunResult
from tests.helpers import DATA

RUNS = [DATA / "replay-quickstart.json", DATA / "capacity-morning-redis.json"]


@pytest.mark.parametrize("path", RUNS, ids=lambda p: p.stem)
def test_csv_round_trips(path, tmp_path):
    result = RunResult.load(path)
    paths = write_csv(result, tmp_path)
    assert [p.name for p in paths] == [
        f"{result.run_id}-series.csv",
        f"{result.run_id}-per-second.csv",
        f"{result.run_id}-summary.csv",
    ]
    back = read_run(tmp_path, result.run_id)
    original = json.loads(path.read_text())["brokers"]
    assert set(back) == set(original)
    for broker, b in original.items():
        assert back[broker]["series"] == b["series"], broker
        assert back[broker]["per_second"] == b["per_second"], broker
        assert back[broker]["summary"] == b["summary"], broker


def test_csv_is_plain_for_a_spreadsheet(tmp_path):
    result = RunResult.load(RUNS[1])
    series, _, summary = write_csv(result, tmp_path)
    with series.open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["broker"] == "redis" and float(rows[0]["t"]) >= 0
    assert rows[0]["lag"] == ""  # null: an empty cell
    with summary.open() as f:
        [row] = list(csv.DictReader(f))
    assert row["e2e_latency_ms.p99"] == repr(
        result.brokers["redis"].summary["e2e_latency_ms"]["p99"]
    )
    assert row["adds_up"] == "true"


def test_strings_that_look_like_numbers_stay_strings(tmp_path):
    result = RunResult.load(RUNS[1])
    result.brokers["redis"].series[0]["state"] = "123"
    result.brokers["redis"].series[1]["state"] = ""
    write_csv(result, tmp_path)
    back = read_run(tmp_path, result.run_id)["redis"]["series"]
    assert back[0]["state"] == "123" and back[1]["state"] == ""


def test_export_knows_csv_and_html():
    assert {"csv", "html"} <= set(FORMATS)


def test_export_csv_through_export(tmp_path):
    paths = export(RunResult.load(RUNS[0]), tmp_path, ("csv",))
    assert len(paths) == 3 and all(p.exists() for p in paths)


def lab(*args):
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ),
    )


def test_command(tmp_path):
    r = lab("export", str(RUNS[0]), "--csv", str(tmp_path / "csv"))
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 3
    assert all(Path(p).exists() for p in r.stdout.split())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["export", str(RUNS[0])], "say what to write: --csv DIR"),
        (["export", "nope.json", "--csv", "x"], "nope.json: no such results file"),
    ],
)
def test_command_bad_input(args, says):
    r = lab(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    [line] = r.stderr.strip().splitlines()
    assert says in line


def test_command_cannot_write(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = lab("export", str(RUNS[0]), "--csv", str(blocker / "csv"))
    assert r.returncode == 2
    [line] = r.stderr.strip().splitlines()
    assert "cannot write CSV" in line
