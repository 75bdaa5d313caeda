"""The lab's recipes on SQS (ElasticMQ), shortened: the ledger exact on each; poison
messages in the dead-letter queue with their attempts, listed and redriven by `lab dlq`;
a SIGKILLed server that loses nothing, a paused one and a network partition that are
latency, not loss; and the external runtime on the same server."""

import json
import time

import pytest

from lab.app import dlq
from lab.faults import Fault
from lab.runtimes.external import ExternalRuntime, parse_url
from tests.helpers import isolated_lab, leftovers, port_block, run_lab, run_one

pytestmark = pytest.mark.brokers


def run(session_lab, recipe_data, faults=()):
    result, _ = run_one(session_lab, "sqs", recipe_data, faults, timeout=120)
    broker = result.brokers["sqs"]
    s = broker.summary
    assert s["adds_up"] and not broker.problems, (s, broker.problems)
    assert broker.emulates == "Amazon SQS and Yandex Message Queue"
    assert broker.version == "ElasticMQ 1.7.1"
    return result, s


def test_up_from_a_fresh_state_dir_and_down_leaves_nothing(fresh_lab):
    started = time.monotonic()
    [status] = fresh_lab.up(["sqs"])
    assert status.state == "healthy", status
    assert time.monotonic() - started < 60
    assert status.version == "ElasticMQ 1.7.1" and status.rss_bytes
    fresh_lab.down(["sqs"])
    assert not leftovers(fresh_lab.settings), "java is gone"


def test_quickstart_every_message_exactly_once(session_lab):
    _, s = run(session_lab, {"duration": "6s", "rate": {"rate": 200}, "durability": "safe"})
    assert s["acked"] == s["produced"] == s["delivered"] == 1200, s
    assert (s["lost"], s["duplicates"], s["in_flight"], s["dead_lettered"]) == (0, 0, 0, 0), s


def test_poison_pill_ends_in_the_dead_letter_queue_and_lab_dlq_redrives_it(session_lab):
    result, s = run(
        session_lab,
        {
            "duration": "6s",
            "rate": {"rate": 200},
            "poison_share": 0.05,
            "max_attempts": 3,
            "consumers": {"count": 2, "prefetch": 50},
        },
    )
    dead = s["dead_lettered"]
    assert dead > 20 and s["delivered"] + dead == s["acked"] and s["lost"] == 0, s
    assert s["poison_acked"] == dead, "every poison message, and only those"
    assert "kept" in " ".join(e.message for e in result.events)
    settings = session_lab.runtime.settings
    listed = run_lab(settings, "dlq", "sqs", "--run", result.run_id, "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    assert f"({dead} in all)" in listed.stdout
    letters = dlq.list_dead_letters(session_lab.runtime, "sqs", result.run_id, 1000)
    assert len(letters) == dead and {d.attempts for d in letters} == {3}
    assert {d.reason for d in letters} == {"redrive policy (maxReceiveCount 3)"}
    moved = run_lab(settings, "dlq", "sqs", "--run", result.run_id, "--redrive")
    assert moved.returncode == 0, moved.stderr
    assert f"{dead} dead letters" in moved.stdout
    purged = run_lab(settings, "dlq", "sqs", "--run", result.run_id, "--purge")
    assert purged.returncode == 0, purged.stderr


def test_broker_crash_loses_no_acked_message(session_lab):
    """SIGKILL mid-run: ElasticMQ's H2 store has every message it acknowledged, and
    what consumers held comes back after the visibility timeout, as duplicates."""
    result, s = run(
        session_lab,
        {"duration": "10s", "rate": {"rate": 100}, "durability": "safe"},
        faults=[(3, Fault("kill")), (5, Fault("restart"))],
    )
    assert s["lost"] == 0 and s["in_flight"] == 0, s
    assert s["delivered"] == s["acked"] > 0, s
    kinds = [e.message.split()[0] for e in result.events if e.kind == "fault"]
    assert kinds[:2] == ["kill", "restart"]


def test_a_paused_server_is_latency_not_loss(session_lab):
    """SIGSTOP for 3 s: sends, receives and deletes wait for it, nothing is lost, and the
    open-loop schedule shows the freeze as latency on what was sent meanwhile."""
    _, s = run(
        session_lab,
        {"duration": "12s", "rate": {"rate": 150}},
        faults=[(4, Fault("pause")), (7, Fault("resume"))],
    )
    assert (s["lost"], s["in_flight"]) == (0, 0), s
    assert s["delivered"] == s["acked"] > 0, s
    assert s["e2e_latency_ms"]["max"] >= 2000, s["e2e_latency_ms"]


def test_a_network_partition_then_heal(session_lab):
    """A blackhole in the chaos proxy for 3 s: requests hang, then go on after the heal."""
    result, s = run(
        session_lab,
        {"duration": "12s", "rate": {"rate": 150}, "drain_timeout": "40s"},
        faults=[(4, Fault("blackhole")), (7, Fault("heal"))],
    )
    assert (s["lost"], s["in_flight"]) == (0, 0), s
    assert s["delivered"] == s["acked"] > 0, s
    assert s["e2e_latency_ms"]["max"] >= 2000, s["e2e_latency_ms"]
    kinds = [e.message.split()[0] for e in result.events if e.kind == "fault"]
    assert kinds[:2] == ["blackhole", "heal"], kinds


def test_retention_squeeze_names_nothing_dropped_on_elasticmq(session_lab):
    result, s = run(
        session_lab,
        {
            "duration": "6s",
            "partitions": 1,
            "rate": {"rate": 200},
            "consumers": {"count": 1, "processing_time": "6.6ms", "prefetch": 20},
            "retention": {"max_age": "2s"},
        },
    )
    assert s["retention_dropped"] == 0 and s["lost"] == 0, s
    assert "deletes nothing by age" in result.brokers["sqs"].settings["retention"]


def test_the_external_runtime_runs_the_same_code_on_a_given_url(session_lab, tmp_path):
    """ElasticMQ given by URL, with credentials from the AWS variables (requests signed
    with them): the run is exact and the secret is nowhere in its output or results."""
    ep = session_lab.endpoint("sqs")
    url = f"sqs://127.0.0.1:{ep.port}"
    secret = "s3cr3t-lab-key-0123456789"
    aws = {"AWS_ACCESS_KEY_ID": "AKIALABTEST", "AWS_SECRET_ACCESS_KEY": secret}
    with isolated_lab(port_base=port_block("cli")) as settings:
        [status] = ExternalRuntime(settings, {"sqs": parse_url(url)}).up(["sqs"])
        assert status.state == "healthy", status
        out = tmp_path / "results"
        done = run_lab(
            settings,
            "--broker-url",
            url,
            "run",
            "quickstart",
            "--brokers",
            "sqs",
            "--duration",
            "6",
            "--out",
            str(out),
            timeout=120,
            **aws,
        )
        assert done.returncode == 0, done.stderr
        [path] = out.glob("*.json")
        text = path.read_text()
        logs = "".join(p.read_text() for p in settings.state_dir.rglob("*.log"))
    assert secret not in text + done.stdout + done.stderr + logs
    data = json.loads(text)
    assert data["environment"]["runtime"] == "external"
    summary = data["brokers"]["sqs"]["summary"]
    assert summary["adds_up"] and summary["delivered"] == summary["acked"] > 0, summary
