"""The TUI's parts that need no screen: the boundary to the core, config, model, replay data."""

import subprocess
import sys
import textwrap

import pytest

from lab.errors import LabError
from lab.metrics import BrokerSnapshot, Latency
from tests.tui.support import recorded
from tui.bindings import SCOPES, binding_ids
from tui.config import TuiConfig
from tui.feed import snapshots_from_result, whole_run
from tui.model import RunModel, leaders, profile_position


def test_the_core_never_loads_textual():
    """`lab run` and the engine work without the TUI: importing every module of the core,
    the CLI included, loads no textual and no tui module."""
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import lab
        for module in pkgutil.walk_packages(lab.__path__, "lab."):
            importlib.import_module(module.name)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "tui"))
        print(",".join(loaded))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "", f"the core loaded: {done.stdout}"


def test_every_binding_has_a_unique_id():
    for scope, bindings in SCOPES.items():
        ids = [b.id for b in bindings]
        assert all(ids), f"a binding on the {scope} screen has no id"
        assert len(ids) == len(set(ids)), scope
    assert "kill" in binding_ids() and "pause-display" in binding_ids()


def test_config_file(tmp_path):
    path = tmp_path / "tui.toml"
    path.write_text(
        'confirm_destructive = false\nlatency_steps_ms = [10, 20]\n[keymap]\nkill = "K"\n'
        "help = '?,h'\n[peaks]\nbig_peak = { x = 100 }\n"
    )
    config = TuiConfig.load(path)
    assert config.confirm_destructive is False
    assert config.latency_steps_ms == (10.0, 20.0)
    assert config.keymap == {"kill": "K", "help": "question_mark,h"}
    assert config.peaks["big_peak"] == {"x": 100.0, "for": 10.0}
    assert config.peaks["peak"] == {"x": 10.0, "for": 10.0}
    assert TuiConfig.load(tmp_path / "missing.toml") == TuiConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[keymap]\nkil = "K"', "did you mean 'kill'"),
        ('[keymap]\nkill = "d"', "key 'd' would mean both 'kill' and 'dead-letters'"),
        ("confirm_destructive = 1", "true or false"),
        ("confirm = true", "unknown setting 'confirm'"),
        ("latency_steps_ms = [0]", "milliseconds > 0"),
        ("[peaks]\npeak = { x = -1 }", "peaks.peak.x"),
        ("[keymap", "cannot read"),
    ],
)
def test_config_mistakes_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "tui.toml"
    path.write_text(text)
    with pytest.raises(LabError, match=message.replace("(", r"\(")) as err:
        TuiConfig.load(path)
    assert str(path) in str(err.value)


def _broker(name, **kw):
    return BrokerSnapshot(broker=name, phase="running", state="healthy", **kw)


def test_leaders_name_the_best_broker_per_figure():
    brokers = (
        _broker("kafka", produce_rate=500, lag=40, e2e=Latency(10, 5.0, 9.0, 12.0, 20.0)),
        _broker("redis", produce_rate=520, lag=3, e2e=Latency(10, 1.0, 2.0, 3.0, 4.0)),
    )
    figures = dict(leaders(brokers))
    assert figures["sent/s"] == "redis"
    assert figures["lag"] == "redis"
    assert figures["e2e p99"] == "redis"
    assert figures["lost"] == "="  # both lost nothing
    assert figures["cpu"] == "-"  # nobody measured it
    assert dict(leaders(brokers[:1]))["sent/s"] == "-"  # nothing to compare with


def test_profile_position():
    assert profile_position({"profile": "steady", "rate": 500}, 3, 20) == "steady 500/s"
    curve = {"profile": "curve", "rate": 100, "curve": [7, 1, 1, 1, 1, 1, 1, 1]}
    assert profile_position(curve, 25, 80).startswith("curve: slice 3 of 8")
    spike = {"profile": "spike", "rate": 200, "peak": 1000, "start": 10, "length": 5}
    assert "in 5 s" in profile_position(spike, 5, 30)
    assert "PEAK" in profile_position(spike, 12, 30)
    assert "over" in profile_position(spike, 20, 30)


def test_replay_rebuilds_the_snapshots_of_a_recorded_run():
    result = recorded()
    snaps = snapshots_from_result(result)
    assert len(snaps) == len(result.brokers["redis"].series)
    assert [b.broker for b in snaps[0].brokers] == list(result.brokers)
    assert snaps[-1].phase == "done" and snaps[10].phase == "running"
    assert [s.t for s in snaps] == sorted(s.t for s in snaps)
    # Every event is delivered exactly once, in order.
    events = [e for s in snaps for e in s.events]
    assert events == sorted(result.events, key=lambda e: e.t)
    last = snaps[-1].broker("redis")
    assert last.ledger.acked == result.brokers["redis"].summary["acked"]
    final = whole_run(result, snaps[-1]).broker("kafka")
    assert final.produce_rate == result.brokers["kafka"].summary["produce_rate"]
    assert final.e2e.p99 == result.brokers["kafka"].summary["e2e_latency_ms"]["p99"]


def test_model_keeps_every_point_and_event_when_renders_are_skipped():
    model = RunModel(history_len=5)
    snaps = snapshots_from_result(recorded())
    for snap in snaps[:8]:
        model.add(snap)
    view = model.take()
    assert view.snapshot is snaps[7]
    assert view.events == [e for s in snaps[:8] for e in s.events]
    assert len(view.history["redis"]["sent"]) == 5
    again = model.take()
    assert again.events == []
    assert again.history["redis"]["sent"] is not view.history["redis"]["sent"]
