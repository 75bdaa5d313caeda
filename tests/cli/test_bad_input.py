"""Bad input a demanding user types, through the real executable: one clear line, exit 2,
no traceback, and the line blames what was typed (a flag is not the recipe file)."""

import json
import os
import stat

import pytest

from tests.helpers import DATA, isolated_lab, port_block, run_lab

RECORDED = DATA / "replay-quickstart.json"


@pytest.fixture
def settings():
    # Nothing here starts a broker: every one of these is refused before any would start,
    # and isolated_lab checks that nothing did, then removes the state dir.
    with isolated_lab(port_base=port_block("cli")) as s:
        yield s


def one_line(done) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0].removeprefix("lab: error: ")


def test_a_recipe_that_is_a_directory(settings, tmp_path):
    folder = tmp_path / "d.toml"
    folder.mkdir()
    assert one_line(run_lab(settings, "run", str(folder))) == (
        f"{folder} is a directory, not a recipe: give a recipe's .toml file"
    )


def test_a_replay_that_is_a_directory_or_not_a_file(settings, tmp_path):
    assert "is a directory" in one_line(run_lab(settings, "tui", "--replay", str(tmp_path)))
    missing = one_line(run_lab(settings, "tui", "--replay", str(tmp_path / "nope.json")))
    assert missing == f"{tmp_path / 'nope.json'}: no such results file (lab run writes them)"


def test_no_brokers_is_not_all_brokers(settings):
    line = one_line(run_lab(settings, "run", "quickstart", "--brokers", ""))
    assert line.startswith("--brokers: name at least one, from kafka, rabbitmq")


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("60s kill redis", "--fault '60s kill redis': 60s is after the run ends (20s)"),
        ("4s kill kafka", "--fault '4s kill kafka': kafka is not in this run (redis)"),
        ("4s explode redis", "unknown fault action 'explode'"),
        # Fault times read like a recipe's durations: 1h is a time, past this run's end.
        ("1h kill redis", "--fault '1h kill redis': 3600s is after the run ends (20s)"),
        ("25 kill redis", "--fault '25 kill redis': 25s is after the run ends (20s)"),
        ("5 peak redis for=soon", "fault 'peak': for: 'soon' is not a duration; write e.g. 30"),
    ],
)
def test_a_fault_that_can_never_happen(settings, fault, said):
    line = one_line(run_lab(settings, "run", "quickstart", "--brokers", "redis", "--fault", fault))
    assert line.startswith(said), line


def test_the_recipe_file_says_it_in_the_same_words(settings, tmp_path):
    recipe = tmp_path / "late.toml"
    recipe.write_text('duration = 20\n[[faults]]\nat = 60\naction = "kill"\n')
    line = one_line(run_lab(settings, "run", str(recipe)))
    assert line == f"{recipe}: faults[0].at: 60s is after the run ends (20s)"


def test_a_recipe_fault_on_a_broker_not_in_the_run(settings, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'brokers = ["redis"]\nduration = 4\n[[faults]]\nat = 2\naction = "kill"\nbroker = "kafka"\n'
    )
    line = one_line(run_lab(settings, "run", str(recipe)))
    assert line == f"{recipe}: faults[0].broker: kafka is not in this run (redis)"


def test_brokers_that_leave_out_a_recipe_faults_broker_are_blamed(settings, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'brokers = ["redis", "kafka"]\nduration = 4\n'
        '[[faults]]\nat = 2\naction = "kill"\nbroker = "kafka"\n'
    )
    line = one_line(run_lab(settings, "run", str(recipe), "--brokers", "redis"))
    assert line == "--brokers redis: with it, faults[0].broker: kafka is not in this run (redis)"


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--duration", "0s"), "--duration: '0s' is too small (at least 1s)"),
        (("--duration", "soon"), "--duration: 'soon' is not a duration; write e.g. 30, 30s"),
        (("--rate", "0"), "--rate: 0.0 is too small (at least 0.001)"),
        (("--rate", "x"), "run: argument --rate: invalid float value: 'x' (see lab run --help)"),
        (("--duration", "2"), "--duration 2: with it, warmup: 3s leaves nothing of a 2s run"),
    ],
)
def test_an_override_is_blamed_on_its_flag(settings, flags, said):
    line = one_line(run_lab(settings, "run", "quickstart", *flags))
    assert line.startswith(said), line
    assert "quickstart.toml" not in line


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (
            lambda d: d["brokers"]["kafka"]["summary"].pop("publish_latency_ms"),
            "brokers.kafka.summary: 'publish_latency_ms' is a required property",
        ),
        (
            lambda d: d["brokers"]["kafka"].__setitem__("series", "x"),
            "brokers.kafka.series: 'x' is not of type 'array'",
        ),
        (lambda d: d.pop("brokers"), "the file: 'brokers' is a required property"),
        (
            lambda d: d["brokers"]["redis"]["series"][3].__setitem__("phase", "dancing"),
            "brokers.redis.series.3.phase: 'dancing' is not one of",
        ),
    ],
)
def test_an_edited_results_file_is_named_not_a_traceback(settings, tmp_path, edit, said):
    data = json.loads(RECORDED.read_text())
    edit(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    for command in (("tui", "--replay", str(path)), ("report", str(path), "-o", "x.html")):
        line = one_line(run_lab(settings, *command))
        assert line.startswith(f"{path} is not a Broker Lab results file: {said}"), line


def test_results_are_readable_by_all_like_the_exports(settings, tmp_path):
    from lab.export import export
    from lab.results import RunResult

    paths = export(RunResult.load(RECORDED), tmp_path, ("json", "md"))
    modes = {p.suffix: stat.S_IMODE(os.stat(p).st_mode) for p in paths}
    assert modes == {".json": 0o644, ".md": 0o644}
