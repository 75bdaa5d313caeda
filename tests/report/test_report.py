"""`lab report` in a real browser: Debian's Chromium renders the HTML with no network, and
every chart draws its data; old results files (without percentiles) still render."""

import json
import subprocess
import sys

import pytest

from lab.errors import LabError
from lab.export import export
from lab.report import write_report
from lab.report.data import run_data
from lab.results import RunResult
from tests.helpers import DATA
from tests.report.browser import assert_drawn, render

OLD = DATA / "replay-quickstart.json"  # written before latency percentiles were recorded
# `lab capacity --users 10000 --peak-share 0.55 --recipe ... --seconds-per-hour 4
# --rate-scale 20`, run through Redis: new-style percentiles and a predicted backlog.
CAPACITY = DATA / "capacity-morning-redis.json"
CHARTS_PER_RUN = 7  # send, receive, lag, e2e p50, e2e p99, two percentile plots


def test_an_old_results_file_renders(tmp_path):
    out = write_report([OLD], tmp_path / "report.html")
    r = render(out, tmp_path / "profile")
    assert_drawn(r, CHARTS_PER_RUN)
    assert "kafka (p50/95/99/max only)" in r.text  # said, not hidden, for old files
    assert "6,000" in r.text  # the ledger
    assert "acks" in r.text and "confluent-kafka" in r.text  # settings, environment


def test_two_runs_side_by_side_on_shared_axes(tmp_path):
    out = write_report([OLD, CAPACITY], tmp_path / "report.html")
    r = render(out, tmp_path / "profile", screenshot=tmp_path / "report.png")
    assert_drawn(r, 2 * CHARTS_PER_RUN)
    by_kind: dict[str, list[dict]] = {}
    for c in r.charts:
        by_kind.setdefault(c["id"].rsplit("-", 1)[0], []).append(c)
    assert len(by_kind) == CHARTS_PER_RUN
    for kind, (a, b) in by_kind.items():
        assert a["yMax"] == b["yMax"] and a["xRange"] == b["xRange"], kind
    assert "A · quickstart" in r.text and "B · morning-day" in r.text


def test_latency_over_many_decades_labels_the_ones_that_fit(tmp_path):
    # A backlog takes end-to-end latency from a fraction of a millisecond to a minute: the
    # log axis has no room for every decade's label, and uPlot leaves some out.
    data = json.loads(CAPACITY.read_text())
    e2e = data["brokers"]["redis"]["summary"]["e2e_latency_ms"]
    e2e["percentiles"] = [[p, 0.01 * 10 ** (i * 7 / 10)] for i, p in enumerate(range(10, 101, 9))]
    path = tmp_path / "decades.json"
    path.write_text(json.dumps(data))
    assert_drawn(render(write_report([path], tmp_path / "r.html"), tmp_path / "p"), CHARTS_PER_RUN)


def test_the_report_predicts_the_backlog_of_a_run_with_a_processing_time():
    run = run_data(RunResult.load(CAPACITY), "capacity")
    [redis] = run["brokers"]
    prediction = redis["prediction"]
    assert prediction["capacity"] == pytest.approx(200)  # 1 consumer at 5 ms
    lag = max(v for v in redis["series"]["lag"] if v is not None)
    assert lag == pytest.approx(prediction["peak"], rel=0.25)
    # The quickstart's consumers have no processing time: nothing to predict.
    assert all(b["prediction"] is None for b in run_data(RunResult.load(OLD), "old")["brokers"])


def test_markers_for_phases_and_faults():
    run = run_data(RunResult.load(OLD), "old")
    labels = {m["label"] for m in run["markers"]}
    assert {"producing", "warm-up over", "draining"} <= labels
    producing = next(m for m in run["markers"] if m["label"] == "producing")
    assert len(producing["brokers"]) >= 2  # brokers that started together: one line


def faults_on_every_broker(tmp_path):
    """The old file with a fault that hit its four brokers within a second, two others at
    the same moment, and a resume of two of them: labels that used to be drawn on top of
    each other."""
    data = json.loads(OLD.read_text())
    brokers = list(data["brokers"])
    events = [
        {"t": 5.0 + 0.01 * i, "kind": "fault", "message": f"pause {b}", "broker": b}
        for i, b in enumerate(brokers)
    ]
    events += [
        {"t": 5.05, "kind": "fault", "message": "latency kafka ms=200", "broker": "kafka"},
        {"t": 5.1, "kind": "fault", "message": "crash-consumer redis", "broker": "redis"},
        {"t": 9.0, "kind": "fault", "message": "resume kafka", "broker": "kafka"},
        {"t": 9.2, "kind": "fault", "message": "resume redis", "broker": "redis"},
    ]
    data["events"] = sorted(data["events"] + events, key=lambda e: e["t"])
    path = tmp_path / "faults.json"
    path.write_text(json.dumps(data))
    return path


def test_one_fault_on_several_brokers_is_one_marker(tmp_path):
    run = run_data(RunResult.load(faults_on_every_broker(tmp_path)), "faults")
    faults = [m for m in run["markers"] if m["kind"] == "fault"]
    assert [m["label"] for m in faults] == [
        "pause · 4 brokers",
        "latency kafka ms=200",
        "crash-consumer redis",
        "resume · kafka, redis",
    ]
    assert faults[0]["brokers"] == ["kafka", "rabbitmq", "redis", "postgres"]


def test_marker_labels_never_overlap(tmp_path):
    out = write_report([faults_on_every_broker(tmp_path)], tmp_path / "report.html")
    r = render(out, tmp_path / "profile", screenshot=tmp_path / "markers.png")
    assert_drawn(r, CHARTS_PER_RUN)
    assert len(r.labels) == 5  # the five time charts carry the markers
    for chart, boxes in r.labels.items():
        labels = [b["label"] for b in boxes]
        assert "pause · 4 brokers" in labels and "resume · kafka, redis" in labels, labels
        for i, a in enumerate(boxes):
            assert a["x"] >= 0 and a["x"] + a["w"] <= a["canvasWidth"], (chart, a)
            for b in boxes[i + 1 :]:
                apart = (
                    a["x"] + a["w"] <= b["x"]
                    or b["x"] + b["w"] <= a["x"]
                    or a["y"] + a["h"] <= b["y"]
                    or b["y"] + b["h"] <= a["y"]
                )
                assert apart, (chart, a, b)


def test_export_html_is_the_same_report(tmp_path):
    [path] = export(RunResult.load(CAPACITY), tmp_path, ("html",))
    assert_drawn(render(path, tmp_path / "profile"), CHARTS_PER_RUN)


def lab(*args, **env):
    import os

    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


def one_line(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("lab: error: ")
    return lines[0]


def test_command_writes_the_file(tmp_path):
    out = tmp_path / "sub" / "r.html"
    r = lab("report", str(OLD), str(CAPACITY), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_bad_input_is_one_line(tmp_path):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"run_id": "x", "brokers": {')
    assert "no such results file" in one_line(lab("report", str(tmp_path / "nope.json")))
    assert "is not valid JSON" in one_line(lab("report", str(corrupt)))
    not_a_run = tmp_path / "list.json"
    not_a_run.write_text("[1, 2]")
    assert "not a Broker Lab results file" in one_line(lab("report", str(not_a_run)))
    assert "is a directory" in one_line(lab("report", str(tmp_path)))
    assert "required" in one_line(lab("report"))


def test_missing_chart_library_says_make_setup(tmp_path):
    line = one_line(
        lab("report", str(OLD), "-o", str(tmp_path / "r.html"), LAB_CACHE_DIR=str(tmp_path))
    )
    assert "uPlot" in line and "make setup" in line
    with pytest.raises(LabError, match="make setup"):
        write_report([OLD], tmp_path / "r.html", cache_dir=tmp_path)
