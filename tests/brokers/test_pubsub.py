"""Pub/Sub on Google's emulator: what the contract test does not reach. The dead-letter
policy's own path, both ways of pulling, a consumer that dies, the final count, an
emulator that restarts empty, the recipes, the external runtime, and its URLs."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from google.api_core import exceptions as gexc

from lab import brokers as registry
from lab import messages
from lab.app import dlq as kept
from lab.brokers import adapter_for
from lab.brokers.contract import DeadLetterInfo, RunSpec
from lab.brokers.pubsub import backlog, dlq
from lab.brokers.pubsub.connection import Names
from lab.brokers.pubsub.native import PubsubEmulator
from lab.brokers.pubsub.resources import Admin
from lab.engine.session import Session
from lab.errors import LabError
from lab.forkserver import context
from lab.recipes import load, parse
from lab.runtimes.external import parse_url
from tests.brokers.helpers import (
    dead_letter_some,
    drain,
    new_adapter,
    produce,
    provisioned,
    receive,
)
from tests.helpers import REPO, run_lab

pytestmark = pytest.mark.brokers
ACK_DEADLINE = 10  # the emulator's subscriptions, and Pub/Sub's minimum


def pubsub(session_lab, recipe=None):
    return provisioned(new_adapter(session_lab, "pubsub", recipe, "pubsub-test"))


def seqs_of(deliveries):
    return [messages.decode(d.payload).seq for d in deliveries]


@pytest.mark.parametrize("pull", ["synchronous", "streaming"])
def test_both_pulls_deliver_everything_once_and_close_gives_back_at_once(session_lab, pull):
    with pubsub(session_lab, {"pubsub": {"pull": pull}}) as adapter:
        produce(adapter, 300)
        quitter = adapter.consumer(0)
        held = receive(quitter, 20)
        assert held, "the first consumer received nothing"
        quitter.close()  # neither acked nor rejected: handed back, not left to the deadline
        survivor = adapter.consumer(1)
        started = time.monotonic()
        try:
            seqs = drain(survivor, 300, timeout=ACK_DEADLINE * 3)
        finally:
            survivor.close()
        assert sorted(set(seqs)) == list(range(300))
        assert time.monotonic() - started < ACK_DEADLINE / 2, "waited for an ack deadline"
        assert adapter.probe(final=True).depth == 0


def test_a_consumer_killed_mid_batch_hands_its_messages_back_at_the_ack_deadline(session_lab):
    """Synchronous pull: a SIGKILLed consumer leaves nothing behind on the emulator but
    its leases, which expire once."""
    with pubsub(session_lab) as adapter:
        produce(adapter, 100)
        script = textwrap.dedent(
            f"""
            import sys, time
            from lab.brokers import adapter_for
            from lab.brokers.contract import RunSpec
            from lab.recipes import parse
            from lab.brokers import get
            spec = RunSpec({adapter.spec.run_id!r}, "pubsub", get("pubsub").endpoint(
                {adapter.spec.endpoint.host!r}, {adapter.spec.endpoint.port}, None), parse({{}}))
            consumer = adapter_for(spec).consumer(0)
            got = []
            while len(got) < 100:
                got += consumer.receive(100, 1.0)
            print(len(got), flush=True)
            time.sleep(60)
            """
        )
        child = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        try:
            assert child.stdout.readline().strip() == "100"
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        survivor = adapter.consumer(1)
        started = time.monotonic()
        try:
            again = receive(survivor, 100, timeout=ACK_DEADLINE * 3)
            survivor.ack(again)
        finally:
            survivor.close()
        waited = time.monotonic() - started
        assert sorted(seqs_of(again)) == list(range(100))
        assert {d.attempts for d in again} == {2}, "delivered once before, to the dead one"
        assert waited < ACK_DEADLINE * 1.5, waited


def test_the_dead_letter_policy_moves_what_failed_max_attempts_times(session_lab):
    """max_attempts 5 is within Pub/Sub's bounds: the fifth nack is the server's cue."""
    with pubsub(session_lab, {"max_attempts": 5}) as adapter:
        produce(adapter, 3)
        consumer = adapter.consumer(0)
        try:
            for attempt in range(1, 5):
                batch = receive(consumer, 3, timeout=10)
                assert {d.attempts for d in batch} == {attempt}
                consumer.reject(batch)
            last = receive(consumer, 3, timeout=10)
            assert {d.attempts for d in last} == {5}
            info = DeadLetterInfo("poison: processing failed", 5, 1000.0, 1001.0)
            consumer.dead_letter([(d, info) for d in last])
            assert consumer.receive(3, 1.0) == [], "gone from the subscription"
        finally:
            consumer.close()
        probe = adapter.probe(final=True)
        assert (probe.depth, probe.dead_letters) == (0, 3)
        letters = adapter.dead_letters(10)
        assert sorted(letter.seq for letter in letters) == [0, 1, 2]
        assert {(letter.reason, letter.attempts) for letter in letters} == {(dlq.POLICY_REASON, 5)}
        assert adapter.redrive() == 3
        assert adapter.probe(final=True).dead_letters == 0
        consumer = adapter.consumer(1)
        try:
            again = receive(consumer, 3)
            consumer.ack(again)
        finally:
            consumer.close()
        assert {d.attempts for d in again} == {1}, "attempts start again after a redrive"


def test_the_final_count_neither_counts_an_attempt_nor_moves_a_message(session_lab):
    with pubsub(session_lab, {"max_attempts": 5}) as adapter:
        produce(adapter, 4)
        consumer = adapter.consumer(0)
        try:
            for _ in range(4):  # one nack short of the policy's limit
                consumer.reject(receive(consumer, 4, timeout=10))
        finally:
            consumer.close()
        for _ in range(3):
            probe = adapter.probe(final=True)
            assert (probe.depth, probe.dead_letters) == (4, 0)
        live = adapter.probe()
        assert live.depth is None and live.dead_letters == 0


def test_ordering_keys_deliver_each_key_in_order(session_lab):
    recipe = {"partitions": 3, "pubsub": {"ordering": True, "pull": "streaming"}}
    with pubsub(session_lab, recipe) as adapter:
        assert "ordering keys" in adapter.settings()["ordering"]
        produce(adapter, 300)
        consumer = adapter.consumer(0)
        try:
            seqs = drain(consumer, 300)
        finally:
            consumer.close()
    assert sorted(seqs) == list(range(300))
    for key in range(3):
        mine = [s for s in seqs if s % 3 == key]
        assert mine == sorted(mine), f"key {key} out of order"


def test_retention_is_recorded_as_pubsub_bounds_it_and_nothing_is_dropped(session_lab):
    recipe = {"retention": {"max_age": "10s", "max_messages": 50}}
    with pubsub(session_lab, recipe) as adapter:
        settings = adapter.settings()
        assert "message_retention_duration = 600s (Pub/Sub's minimum" in settings["retention"]
        assert "max_messages / max_bytes not applied" in settings["retention"]
        assert "never expires" in settings["retention"]
        produce(adapter, 200)
        probe = adapter.probe(final=True)
        assert probe.depth == 200 and probe.retention_dropped is None


def test_settings_say_what_each_setting_became_and_what_the_emulator_does_not(session_lab):
    with pubsub(session_lab, {"durability": "safe", "max_attempts": 3}) as adapter:
        settings = adapter.settings()
    assert "in memory only" in settings["durability"]
    assert "max_delivery_attempts = 5" in settings["dead_letters"]
    assert "publishes the message" in settings["dead_letters"]
    assert "synchronous pull" in settings["subscriber"]
    assert "never applied" in settings["emulator_limits"]
    assert settings["server"] == "the emulator"


def test_workers_forked_from_the_forkserver_talk_grpc_while_the_parent_holds_a_channel(
    session_lab,
):
    """grpc is imported before the fork (the forkserver preloads it) and the engine
    has channels of its own; a worker's client must work and close within seconds."""
    with pubsub(session_lab) as adapter:
        produce(adapter, 50)  # the parent's own channel is open and used
        ctx = context()
        result = ctx.Queue()
        proc = ctx.Process(target=_consume_in_worker, args=(adapter.spec, result))
        started = time.monotonic()
        proc.start()
        proc.join(30)
        assert proc.exitcode == 0
        got, close_s = result.get(timeout=5)
        assert got == list(range(50))
        assert close_s < 3, close_s
        assert time.monotonic() - started < 20
        assert adapter.probe(final=True).depth == 0


def _consume_in_worker(spec, result):
    from lab.brokers import adapter_for

    consumer = adapter_for(spec).consumer(0)
    seqs = sorted(drain(consumer, 50))
    started = time.monotonic()
    consumer.close()
    result.put((seqs, time.monotonic() - started))


# --- recipes through the engine ------------------------------------------------------------


def run(session_lab, name, losses=False, **overrides):
    session_lab.endpoint("pubsub")
    fields = {"brokers": ["pubsub"], **overrides}
    recipe = load(name, {field: (field, value) for field, value in fields.items()})
    session = Session(session_lab.runtime, stop_started_brokers=False)
    session.start(recipe, ["pubsub"], "parallel")
    list(session.snapshots())
    result = session.wait(timeout=120)
    session.close()
    session_lab.runtime.up(["pubsub"])  # healthy again for the next test, whatever happened
    assert result is not None
    # A kill loses what the in-memory emulator held: said as expected, never as broken.
    expected = [p for p in result.problems if losses and "acknowledged messages lost, as" in p]
    assert result.problems == expected, result.problems
    summary = result.brokers["pubsub"].summary
    assert summary["adds_up"], summary
    return result, summary


def test_quickstart(session_lab):
    result, s = run(session_lab, "quickstart", duration="8s", warmup="2s")
    assert s["acked"] == s["produced"] == s["delivered"] == 500 * 8, s
    assert (s["lost"], s["in_flight"], s["dead_lettered"]) == (0, 0, 0), s
    assert result.brokers["pubsub"].emulates == "Google Cloud Pub/Sub"
    assert "google-cloud-pubsub" in result.environment["clients"]["pubsub"]


def test_poison_pill_ends_in_the_dead_letter_topic_with_its_attempts(session_lab):
    result, s = run(session_lab, "poison-pill", duration="8s")
    assert s["dead_lettered"] > 0 and s["lost"] == 0 and s["in_flight"] == 0, s
    assert s["delivered"] + s["dead_lettered"] == s["acked"], s
    letters = kept.list_dead_letters(session_lab.runtime, "pubsub", result.run_id, 10_000)
    assert len(letters) == s["dead_lettered"]
    assert {(letter.reason, letter.attempts) for letter in letters} == {
        ("poison: processing failed", 3)
    }
    assert kept.redrive(session_lab.runtime, "pubsub", result.run_id) == len(letters)
    kept.purge(session_lab.runtime, "pubsub", result.run_id)


def test_broker_crash_loses_what_the_emulator_held_and_says_so(session_lab):
    result, s = run(session_lab, "broker-crash", losses=True, duration="25s", drain_timeout="10s")
    assert 0 < s["acked"] < s["produced"], s  # sends failed while it was down
    assert s["in_flight"] == 0, s
    # What was acked and not yet consumed at the kill is gone: the emulator keeps memory.
    assert s["delivered"] + s["lost"] == s["acked"], s
    kinds = [e.message.split()[0] for e in result.events if e.kind == "fault"]
    assert kinds[:2] == ["kill", "restart"], kinds
    processed = result.brokers["pubsub"].per_second["processed"]
    assert sum(processed[16:]) > 0, "producers and consumers came back after the restart"


def test_retention_squeeze_keeps_everything_in_flight(session_lab):
    _, s = run(session_lab, "retention-squeeze", duration="10s", drain_timeout="3s")
    assert s["retention_dropped"] == 0 and s["lost"] == 0, s
    assert s["in_flight"] > 0, "the consumer cannot keep up: the final count finds a backlog"
    assert s["delivered"] + s["in_flight"] == s["acked"], s


# --- the lab's own emulator, and the external runtime -------------------------------------


def test_up_from_a_fresh_state_dir_and_down_leaves_nothing(fresh_lab):
    [status] = fresh_lab.up(["pubsub"])
    assert status.state == "healthy" and status.version.startswith("Pub/Sub emulator 0.")
    [proc] = fresh_lab._procs("pubsub")
    assert proc.name() == "java" and "--host=127.0.0.1" in proc.cmdline()
    fresh_lab.down(["pubsub"])
    assert fresh_lab._procs("pubsub") == []  # and the fixture finds no leftover


def test_a_producer_provisions_again_after_an_emulator_restart(fresh_lab):
    fresh_lab.up(["pubsub"])
    spec = RunSpec("t" + uuid.uuid4().hex[:8], "pubsub", fresh_lab.endpoint("pubsub"), parse({}))
    adapter = registry.adapter_for(spec)
    adapter.provision()
    produce(adapter, 10)
    fresh_lab.restart("pubsub")
    assert adapter.probe(final=True).depth == 0, "the emulator forgot everything"
    produce(adapter, 10)  # the producer finds the subscription gone and makes it again
    assert adapter.probe(final=True).depth == 10
    adapter.teardown()
    adapter.close()


def test_the_external_runtime_runs_the_same_code_against_the_emulator(session_lab, tmp_path):
    ep = session_lab.endpoint("pubsub")
    url = f"pubsub://{ep.host}:{ep.port}/external-test"
    settings = session_lab.runtime.settings
    done = run_lab(settings, "--broker-url", url, "status", "pubsub")
    assert done.returncode == 0, done.stderr
    assert "healthy" in done.stdout and "external" in done.stdout
    creds = tmp_path / "adc.json"
    creds.write_text('{"type": "authorized_user", "client_secret": "very-secret-value"}')
    done = run_lab(
        settings,
        "--broker-url",
        url,
        "run",
        "quickstart",
        "--brokers",
        "pubsub",
        "--duration",
        "5s",
        "--out",
        str(tmp_path / "results"),
        GOOGLE_APPLICATION_CREDENTIALS=str(creds),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    [path] = (tmp_path / "results").glob("*.json")
    text = path.read_text()
    summary = json.loads(text)["brokers"]["pubsub"]["summary"]
    assert summary["adds_up"] and summary["delivered"] == summary["acked"] > 0, summary
    assert "very-secret-value" not in text + done.stdout + done.stderr


# --- without a broker ----------------------------------------------------------------


def test_urls():
    ep = parse_url("pubsub://pubsub.googleapis.com/my-project")
    assert (ep.port, ep.path) == (443, "my-project")
    assert parse_url("pubsub://127.0.0.1:8085/broker-lab").port == 8085
    with pytest.raises(LabError, match="Application Default Credentials"):
        parse_url("pubsub://user:secret@127.0.0.1:8085/p-roject")
    with pytest.raises(LabError, match="not a project id"):
        parse_url("pubsub://127.0.0.1:8085/Not_A_Project")


def test_missing_emulator_says_how_to_install_it(monkeypatch, tmp_path):
    from lab.brokers.pubsub import native
    from lab.settings import Settings

    monkeypatch.setattr(native, "SDK_ROOTS", (str(tmp_path),))
    monkeypatch.setattr(native, "sdk_roots", lambda: [tmp_path])  # and no gcloud on PATH
    emulator = PubsubEmulator(Settings(tmp_path, 4000, tmp_path), registry.get("pubsub"))
    why = emulator.missing()
    assert why and "google-cloud-cli-pubsub-emulator" in why and "make setup" not in why
    assert "gcloud components install pubsub-emulator" in why


def test_teardown_keeps_dead_letters_for_a_later_adapter(session_lab):
    """The contract's keep test for this broker alone (that one starts every broker)."""
    adapter = new_adapter(session_lab, "pubsub")
    adapter.provision()
    produce(adapter, 2)
    dead_letter_some(adapter, 2, [1], DeadLetterInfo("test", 1, 1.0, 2.0))
    adapter.teardown(keep_dead_letters=True)
    adapter.close()
    again = registry.adapter_for(adapter.spec)  # as `lab dlq` does, from another process
    try:
        assert [letter.seq for letter in again.dead_letters(10)] == [1]
    finally:
        again.teardown()
        again.close()


def test_pub_sub_counts_each_backlog_live_without_touching_the_subscribers_messages(
    session_lab,
):
    """The live count is made on a copy (snapshot, seek): no subscriber's message is held
    or attempted by it, and what a consumer holds unacked is backlog."""
    recipe = {"pattern": "pub-sub", "subscribers": {"count": 2}}
    with pubsub(session_lab, recipe) as adapter:
        produce(adapter, 250)
        first = adapter_for(dataclasses.replace(adapter.spec, subscriber="sub-1")).consumer(0)
        try:
            assert len(drain(first, 100)) == 100
            held = receive(first, 20)
            for _ in range(3):
                live = adapter.probe()
                assert live.subscriber_depths == {"sub-1": 150, "sub-2": 250}, live
                assert live.depth == 400
        finally:
            first.close()
        second = adapter_for(dataclasses.replace(adapter.spec, subscriber="sub-2")).consumer(0)
        try:
            got = receive(second, 250)
            second.ack(got)
        finally:
            second.close()
        assert sorted(seqs_of(got)) == list(range(250))
        assert {d.attempts for d in got} == {1}, "counting attempted them"
        assert held, "sub-1's consumer held nothing"
        final = adapter.probe(final=True)
        assert final.subscriber_depths == {"sub-1": 150, "sub-2": 0}, final
        assert "snapshot" in adapter.settings()["backlog"]


def test_replies_reach_each_requester_with_the_correlation_id_and_go_at_teardown(session_lab):
    recipe = {"pattern": "request-reply", "producers": {"count": 2}}
    adapter = new_adapter(session_lab, "pubsub", recipe, "pubsub-rr")
    names = Names.of(adapter.spec)
    tag = messages.run_tag(adapter.spec.run_id)

    def reply(requester, seq):
        return messages.encode(tag, requester, seq, 0, False, 100)[: messages.HEADER_SIZE]

    with provisioned(adapter):
        replier = adapter.replier(0)
        receivers = [adapter.replies(0), adapter.replies(1)]
        try:
            replier.send([(0, reply(0, 0)), (1, reply(1, 0)), (0, reply(0, 1))])
            heard = {0: [], 1: []}
            deadline = time.monotonic() + 10
            while (len(heard[0]), len(heard[1])) != (2, 1) and time.monotonic() < deadline:
                for n, receiver in enumerate(receivers):
                    heard[n] += [messages.decode(r) for r in receiver.receive(0.2)]
            assert sorted((h.producer, h.seq) for h in heard[0]) == [(0, 0), (0, 1)]
            assert [(h.producer, h.seq) for h in heard[1]] == [(1, 0)]
            replier.send([(1, reply(1, 5))])
            api = adapter.admin.subscriptions
            [raw] = receive_raw(api, names.reply_subscriptions[1])
            assert raw.message.attributes["correlation-id"] == "1-5"
        finally:
            replier.close()
            for receiver in receivers:
                receiver.close()  # acks what it took
        assert backlog.count(api, names.reply_subscriptions[0]) == 0, "replies not acked"
        assert "correlation-id" in adapter.settings()["replies"]
    admin = Admin.connect(adapter.spec)
    try:
        for topic in names.reply_topics:
            with pytest.raises(gexc.NotFound):
                admin.topics.get_topic(topic=topic, timeout=10)
    finally:
        admin.close()


def receive_raw(api, subscription, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = api.pull(request={"subscription": subscription, "max_messages": 10}, timeout=2.0)
        if got.received_messages:
            return list(got.received_messages)
    return []
