"""Kinesis through the real executable: up and down from a fresh state dir, the recipes,
lab dlq, and the external runtime on the same kinesalite, keys never written anywhere."""

import json
from pathlib import Path

import pytest

from tests.helpers import leftovers, run_lab

pytestmark = pytest.mark.brokers

KEY_ID, SECRET = "AKIAKINESISLABTEST", "kinesis-lab-s3cr3t-never-written"


def ok(done):
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def result_of(out: Path, name: str) -> dict:
    [path] = out.glob(f"*-{name}-*.json")
    return json.loads(path.read_text())


def exact(result: dict) -> dict:
    s = result["brokers"]["kinesis"]["summary"]
    assert s["adds_up"] and (s["lost"], s["in_flight"]) == (0, 0), s
    return s


def test_up_from_a_fresh_state_dir_and_down_leaves_nothing(fresh_lab):
    settings = fresh_lab.settings
    up = ok(run_lab(settings, "up", "kinesis"))
    assert "kinesis: healthy in" in up.stderr
    [row] = json.loads(ok(run_lab(settings, "status", "kinesis", "--json")).stdout)
    assert row["state"] == "healthy" and row["version"] == "kinesalite 3.3.3"
    ok(run_lab(settings, "down"))
    assert leftovers(settings) == []


def test_recipes_and_dead_letters_through_lab_run_and_lab_dlq(fresh_lab, tmp_path):
    settings = fresh_lab.settings
    out = ("--out", str(tmp_path))
    ok(run_lab(settings, "run", "quickstart", "--brokers", "kinesis", "--duration", "5", *out))
    quick = result_of(tmp_path, "quickstart")
    s = exact(quick)
    assert s["delivered"] == s["acked"] == 2500, s
    broker = quick["brokers"]["kinesis"]
    assert broker["emulates"] == "Amazon Kinesis Data Streams and Yandex Data Streams"
    assert (
        "not_emulated" in broker["settings"]
        and "changes nothing" in broker["settings"]["durability"]
    )

    done = ok(
        run_lab(settings, "run", "poison-pill", "--brokers", "kinesis", "--duration", "6", *out)
    )
    s = exact(result_of(tmp_path, "poison-pill"))
    assert s["dead_lettered"] == s["poison_acked"] > 0, s
    assert "lab dlq kinesis --run" in done.stdout

    listed = ok(run_lab(settings, "dlq", "kinesis", timeout=180))
    assert f"({s['dead_lettered']} in all)" in listed.stdout
    assert "redrive: lab dlq kinesis" in listed.stdout
    moved = ok(run_lab(settings, "dlq", "kinesis", "--redrive", timeout=180))
    assert f"{s['dead_lettered']} dead letters of run" in moved.stdout
    assert "sent back to its queue" in moved.stdout
    ok(run_lab(settings, "down"))
    assert leftovers(settings) == []


def test_the_external_runtime_on_the_same_server_writes_no_key(fresh_lab, tmp_path):
    settings = fresh_lab.settings
    fresh_lab.up(["kinesis"])
    url = f"kinesis://127.0.0.1:{settings.client_port('kinesis')}"
    keys = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    status = ok(run_lab(settings, "--broker-url", url, "status", "kinesis", "--json", **keys))
    [row] = json.loads(status.stdout)
    assert (row["runtime"], row["state"]) == ("external", "healthy")
    done = ok(
        run_lab(
            settings,
            "--broker-url",
            url,
            "run",
            "quickstart",
            "--brokers",
            "kinesis",
            "--duration",
            "4",
            "--out",
            str(tmp_path),
            **keys,
        )
    )
    result = result_of(tmp_path, "quickstart")
    s = exact(result)
    assert s["delivered"] == s["acked"] == 2000, s
    assert result["environment"]["runtime"] == "external"
    written = [done.stdout, done.stderr]
    written += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    written += [p.read_text(errors="replace") for p in settings.state_dir.rglob("*") if p.is_file()]
    assert not [text for text in written if KEY_ID in text or SECRET in text]
    fresh_lab.down(["kinesis"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--broker-url", "kinesis://kinesis.eu-west-1.amazonaws.com", "status"),
            "is plain http on port 443: for https write kinesis+https://HOST",
        ),
        (
            (
                "--broker-url",
                f"kinesis+https://{KEY_ID}:{SECRET}@kinesis.eu-west-1.amazonaws.com",
                "status",
            ),
            "carries credentials",
        ),
    ],
)
def test_bad_input_is_one_line(fresh_lab, args, message):
    done = run_lab(fresh_lab.settings, *args)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert message in line and SECRET not in line


def test_a_bad_kinesis_section_is_one_line(fresh_lab, tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('brokers = ["kinesis"]\n[kinesis]\nput_batch = 501\n')
    done = run_lab(fresh_lab.settings, "run", str(recipe), "--out", str(tmp_path))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "kinesis.put_batch" in line and "500" in line
