"""A broker added as one package, by another installed distribution, through the entry-point
group `broker_lab.brokers`: it shows up everywhere without a change to the lab.

The package (tests/data/scratch-plugin) is a second Redis Streams named `scratch`; this
test puts it on PYTHONPATH and drives the real executable, as a user who installed it.
"""

import json
import shlex
import sys

import pytest

from tests.helpers import DATA, Tmux, isolated_lab, port_block, run_lab

pytestmark = pytest.mark.brokers
PLUGIN = DATA / "scratch-plugin"


@pytest.fixture
def settings():
    with isolated_lab(port_base=port_block("plugin")) as s:
        yield s


def lab(settings, *args, timeout=120):
    return run_lab(settings, *args, timeout=timeout, PYTHONPATH=str(PLUGIN))


def test_a_broker_from_another_package_runs_everywhere(settings, tmp_path):
    rows = json.loads(lab(settings, "status", "--json").stdout)
    assert "scratch" in [r["broker"] for r in rows]

    up = lab(settings, "up", "scratch")
    assert up.returncode == 0, up.stderr
    assert "scratch" in up.stdout and "healthy" in up.stdout
    [row] = json.loads(lab(settings, "status", "scratch", "--json").stdout)
    # Its own port: the plugin's offset in this lab's block (the test process does not
    # know the plugin, so the offset is written out).
    assert row["state"] == "healthy" and row["endpoint"].endswith(f":{settings.port_base + 389}/0")

    # A recipe that names it, with its own section (its plugin's options dataclass).
    recipe = tmp_path / "scratch.toml"
    recipe.write_text(
        'brokers = ["scratch"]\nduration = "4s"\nwarmup = "1s"\n'
        '[rate]\nrate = 200\n[scratch]\nclaim_idle = "1s"\n'
    )
    out = tmp_path / "results"
    done = lab(settings, "run", str(recipe), "--out", str(out))
    assert done.returncode == 0, done.stderr
    [path] = out.glob("*.json")
    result = json.loads(path.read_text())
    summary = result["brokers"]["scratch"]["summary"]
    assert summary["acked"] == summary["delivered"] == 800 and summary["adds_up"]
    assert result["recipe"]["scratch"] == {"claim_idle": 1.0}
    assert "XAUTOCLAIM after 1s" in result["brokers"]["scratch"]["settings"]["redelivery"]

    # A column of its own in the dashboard, replaying that run.
    term = Tmux(120, 40)
    try:
        env = f"PYTHONPATH={shlex.quote(str(PLUGIN))}"
        replay = f"{shlex.quote(sys.executable)} -m lab tui --replay {shlex.quote(str(path))}"
        term.start(f"cd {shlex.quote(str(tmp_path))} && {env} {replay}")
        term.wait_for("1 scratch", "REPLAY")
        term.keys("q")
    finally:
        term.kill()

    down = lab(settings, "down")
    assert down.returncode == 0, down.stderr
    [row] = json.loads(lab(settings, "status", "scratch", "--json").stdout)
    assert row["state"] == "stopped"


def test_a_plugin_whose_ports_collide_is_refused_in_one_line(settings, tmp_path):
    package = tmp_path / "clash_broker"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from lab.brokers.redis import RedisPlugin\n\n"
        "class Clash(RedisPlugin):\n    name = 'clash'\n    ports = {'clash': 379}\n\n"
        "PLUGIN = Clash()\n"
    )
    info = tmp_path / "clash_broker-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: clash-broker\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[broker_lab.brokers]\nclash = clash_broker:PLUGIN\n")
    done = run_lab(settings, "status", PYTHONPATH=str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "lab: error: entry point clash_broker:PLUGIN: port 379 is already redis's"
    ]
