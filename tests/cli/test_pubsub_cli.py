"""Pub/Sub through the real executable: `lab dlq` after the in-memory emulator restarted
says that the run's dead letters went with it, in one line, not that the broker is down."""

import json

import pytest

from tests.helpers import leftovers, run_lab

pytestmark = pytest.mark.brokers


def ok(done):
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def one_line(done) -> str:
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    return line


def test_lab_dlq_after_an_emulator_restart_says_the_dead_letters_are_lost(fresh_lab, tmp_path):
    settings = fresh_lab.settings
    run = ("run", "poison-pill", "--brokers", "pubsub", "--duration", "5", "--keep-brokers")
    ok(run_lab(settings, *run, "--out", str(tmp_path), timeout=240))
    [path] = tmp_path.glob("*-poison-pill-*.json")
    result = json.loads(path.read_text())
    run_id, summary = result["run_id"], result["brokers"]["pubsub"]["summary"]
    assert summary["dead_lettered"] > 0, summary
    listed = ok(run_lab(settings, "dlq", "pubsub"))
    assert f"({summary['dead_lettered']} in all)" in listed.stdout

    ok(run_lab(settings, "down", "pubsub"))
    ok(run_lab(settings, "up", "pubsub"))
    for more in ((), ("--redrive",)):
        done = run_lab(settings, "dlq", "pubsub", *more)
        line = one_line(done)
        assert done.returncode == 2, line
        assert "keeps everything in memory" in line, line
        assert f"lost the dead letters of run {run_id}" in line, line
        assert "did not answer" not in line and "NOT_FOUND" not in line, line

    # The way out it names, and then the answer for no dead letters at all: the same code.
    ok(run_lab(settings, "dlq", "pubsub", "--run", run_id, "--purge"))
    nothing = run_lab(settings, "dlq", "pubsub")
    assert "no run has kept dead letters on pubsub" in one_line(nothing)
    assert nothing.returncode == done.returncode

    ok(run_lab(settings, "down"))
    assert leftovers(settings) == []
