"""Kinesis on a real kinesalite: shards the engine assigns, checkpoints that outlive a
consumer process, retries that hold a checkpoint back, dead letters, and the server's
own lifecycle under the native runtime."""

import dataclasses
import multiprocessing
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from lab import brokers as registry
from lab import messages
from lab.brokers import adapter_for
from lab.brokers.contract import BrokerError, DeadLetterInfo, RunSpec
from lab.brokers.kinesis import streams
from lab.brokers.kinesis.checkpoints import CheckpointStore
from lab.brokers.kinesis.client import make_client
from lab.recipes import parse
from lab.runtimes import BrokerState
from tests.brokers.helpers import (
    dropped_ids,
    new_adapter,
    produce,
    provisioned,
    receive,
    wait_depth,
)
from tests.helpers import leftovers
from tests.runtimes.roundtrip import kinesis as roundtrip

pytestmark = pytest.mark.brokers
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def seqs_of(deliveries):
    return [messages.decode(d.payload).seq for d in deliveries]


def read_all(consumer, want, timeout=30.0, ack=True, batch_size=100):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        batch = consumer.receive(min(batch_size, want - len(got)), 0.5)
        got += batch
        if ack and batch:
            consumer.ack(batch)
    return got


@pytest.fixture
def four_shards(session_lab):
    with provisioned(new_adapter(session_lab, "kinesis", {"partitions": 4}, "shards")) as adapter:
        yield adapter


def test_producers_fill_every_shard_alike_and_positions_order_each_shard(four_shards):
    acks = produce(four_shards, 400)
    by_shard: dict[int, list] = {}
    for ack in acks:
        by_shard.setdefault(ack.partition, []).append(ack)
    assert sorted(by_shard) == [0, 1, 2, 3]
    assert [len(a) for a in by_shard.values()] == [100] * 4, "the shards in turn"
    where = {ack.seq: (ack.partition, ack.position) for ack in acks}
    consumer = four_shards.consumer(0)
    try:
        got = seqs_of(read_all(consumer, 400))
    finally:
        consumer.close()
    assert sorted(got) == list(range(400))
    # A shard is read oldest first: the positions the acks carried rise in that order.
    for shard in range(4):
        positions = [where[s][1] for s in got if where[s][0] == shard]
        assert positions == sorted(positions) and len(set(positions)) == 100
        assert all(p >= 0 for p in positions)


def test_assigned_consumers_read_their_shards_and_a_new_owner_resumes(four_shards):
    acks = produce(four_shards, 400)
    shard_of = {ack.seq: ack.partition for ack in acks}
    first, second = four_shards.consumer(0), four_shards.consumer(1)
    try:
        first.assign([0, 2])
        second.assign([1, 3])
        a = seqs_of(read_all(first, 200))
        b = seqs_of(read_all(second, 200))
        assert {shard_of[s] for s in a} == {0, 2} and {shard_of[s] for s in b} == {1, 3}
        assert sorted(a + b) == list(range(400))

        more = produce(four_shards, 400, first=400)
        shard_of.update({ack.seq: ack.partition for ack in more})
        on_zero = sorted(ack.seq for ack in more if ack.partition == 0)
        # The first consumer settles part of shard 0 and holds some more unacked...
        done = read_all(first, 40, batch_size=10)
        held = receive(first, 10)
        # ...when the engine moves shard 0 to the second consumer.
        first.assign([2])
        second.assign([0, 1, 3])
        first.ack(held)  # too late for shard 0: it is no longer the first consumer's
        mine_then = [s for s in seqs_of(done) if shard_of[s] == 0]
        assert mine_then, "the first consumer read some of shard 0"
        rest = seqs_of(read_all(second, 300 - len(mine_then), timeout=60))
        resumed = sorted(s for s in rest if shard_of[s] == 0)
        assert sorted(mine_then + resumed) == on_zero, "nothing skipped, nothing twice"
        assert set(seqs_of(held)) & set(on_zero) <= set(resumed), "unsettled: read again"
    finally:
        first.close()
        second.close()


def test_each_subscriber_reads_every_shard_with_checkpoints_of_its_own(session_lab):
    recipe = {"pattern": "pub-sub", "partitions": 2, "subscribers": {"count": 2}}
    with provisioned(new_adapter(session_lab, "kinesis", recipe, "fan")) as adapter:
        produce(adapter, 100)
        # Consumers the engine did not assign take leases: each subscriber's own, so both
        # get every shard.
        fast, behind = (
            adapter_for(dataclasses.replace(adapter.spec, subscriber=sub)).consumer(0)
            for sub in ("sub-1", "sub-2")
        )
        try:
            assert sorted(seqs_of(read_all(fast, 100))) == list(range(100))
            assert len(read_all(behind, 30, batch_size=10)) == 30
            probe = adapter.probe(final=True)
            assert probe.subscriber_depths == {"sub-1": 0, "sub-2": 70} and probe.depth == 70
            rest = seqs_of(read_all(behind, 70))
            assert len(rest) == 70 and adapter.probe(final=True).subscriber_depths["sub-2"] == 0
        finally:
            fast.close()
            behind.close()
        files = {p.name for p in (adapter.spec.broker_dir() / "checkpoints").glob("*.json")}
        assert {f"{adapter.stream}.sub-1.json", f"{adapter.stream}.sub-2.json"} <= files
    assert not adapter.stores["sub-1"].path.exists(), "teardown removes every subscriber's"


def test_replies_reach_each_requester_on_its_own_stream_at_the_read_cadence(session_lab):
    recipe = {
        "pattern": "request-reply",
        "producers": {"count": 2},
        "kinesis": {"read_interval": 1},
    }
    adapter = new_adapter(session_lab, "kinesis", recipe, "rpc")
    with provisioned(adapter):
        tag = messages.run_tag(adapter.spec.run_id)
        header = [messages.encode(tag, p, 7, 0, False, 0) for p in (0, 1)]
        replier = adapter.replier(0)
        receivers = [adapter.replies(p) for p in (0, 1)]
        try:
            # Read from the start: replies put before the requester's first read count.
            replier.send([(0, header[0]), (1, header[1])])
            assert receivers[0].receive(1.0) == [header[0]]
            read = time.monotonic()
            assert receivers[1].receive(1.0) == [header[1]]
            replier.send([(0, header[0])])
            # Kinesis has no server-side wait: the reply waits for the requester's next
            # GetRecords, a read_interval after the last one.
            assert receivers[0].receive(0.2) == []
            assert receivers[0].receive(2.0) == [header[0]]
            assert time.monotonic() - read >= 0.8
        finally:
            replier.close()
            for r in receivers:
                r.close()
        names = adapter.reply_streams
        assert names == [f"{adapter.stream}.reply-0", f"{adapter.stream}.reply-1"]
    client = make_client(adapter.spec.admin)
    try:
        for name in names:  # teardown deleted them
            with pytest.raises(BrokerError, match="ResourceNotFoundException"):
                streams.shards(client, name)
    finally:
        client.close()


def _consume_and_die(spec: RunSpec, settle: int, hold: int, env: dict) -> None:
    os.environ.update(env)
    consumer = adapter_for(spec).consumer(7)
    consumer.assign([0])
    read_all(consumer, settle)
    receive(consumer, hold)  # received, never acked
    os.kill(os.getpid(), signal.SIGKILL)


def test_checkpoints_outlive_a_killed_consumer_process(session_lab):
    recipe = {"partitions": 1, "kinesis": {"read_limit": 25}}
    with provisioned(new_adapter(session_lab, "kinesis", recipe, "crash")) as adapter:
        produce(adapter, 200)
        child = multiprocessing.get_context("fork").Process(
            target=_consume_and_die, args=(adapter.spec, 50, 25, dict(os.environ))
        )
        child.start()
        child.join(60)
        assert child.exitcode == -signal.SIGKILL
        assert wait_depth(adapter, 150) == 150, "the probe reads the dead consumer's checkpoint"
        heir = adapter.consumer(8)
        try:
            heir.assign([0])
            got = seqs_of(read_all(heir, 150))
        finally:
            heir.close()
        assert got == list(range(50, 200)), "resumed just after the last checkpoint, in order"


def test_a_rejected_record_is_retried_in_place_and_holds_the_checkpoint(session_lab):
    with provisioned(new_adapter(session_lab, "kinesis", {"partitions": 1}, "retry")) as adapter:
        produce(adapter, 10)
        consumer = adapter.consumer(0)
        try:
            batch = receive(consumer, 10)
            poison, healthy = batch[0], batch[1:]
            consumer.ack(healthy)
            consumer.reject([poison])
            assert wait_depth(adapter, 10) == 10, "no checkpoint passes an unsettled record"
            again = receive(consumer, 1)
            assert seqs_of(again) == [0] and again[0].attempts == 2
            consumer.reject(again)
            third = receive(consumer, 1)
            assert third[0].attempts == 3
            info = DeadLetterInfo("poison: processing failed", 3, 1.0, 2.0)
            consumer.dead_letter([(third[0], info)])
        finally:
            consumer.close()
        probe = adapter.probe(final=True)
        assert (probe.depth, probe.dead_letters) == (0, 1)
        [letter] = adapter.dead_letters(10)
        assert (letter.seq, letter.attempts, letter.reason) == (0, 3, info.reason)


def test_retention_is_by_age_with_the_trim_horizon_as_floor(session_lab):
    recipe = {"partitions": 2, "retention": {"max_age": "10s", "max_messages": 100}}
    with provisioned(new_adapter(session_lab, "kinesis", recipe, "retention")) as adapter:
        acks = produce(adapter, 300)
        probe = adapter.probe(final=True)
        # 24 hours at the least: nothing is gone, and the floor is each shard's first record.
        assert probe.retention_dropped == 0 and probe.depth == 300
        first = {}
        for ack in acks:
            first[ack.partition] = min(first.get(ack.partition, ack.position), ack.position)
        assert probe.retention_floor == first
        settings = adapter.settings()
        assert "RetentionPeriodHours = 24 for max_age 10 s" in settings["retention"]
        assert "not applied" in settings["retention_max_messages"]


def test_records_past_the_retention_period_fall_below_the_trim_horizon(fresh_lab, tmp_path):
    """A day later, for real: kinesalite restarted on a clock 25 hours ahead (faketime)
    expires what was put before, and the trim horizon names exactly those records."""
    assert LIBFAKETIME.exists(), "faketime is missing: make setup (apt-get install faketime)"
    fresh_lab.up(["kinesis"])
    recipe = parse({"partitions": 2, "retention": {"max_age": "10s"}})
    spec = RunSpec(
        "t" + uuid.uuid4().hex[:8],
        "kinesis",
        fresh_lab.endpoint("kinesis"),
        recipe,
        state_dir=fresh_lab.settings.state_dir,
    )
    adapter = adapter_for(spec)
    adapter.provision()
    old = produce(adapter, 300)
    assert adapter.probe(final=True).retention_dropped == 0
    fresh_lab.down(["kinesis"])
    native = registry.get("kinesis").native(fresh_lab.settings)
    argv = [str(native.dir / "serve.js"), str(native.dir / "kinesalite.json")]
    # The library itself, not the faketime command, which would fork node and leave it
    # running when told to stop.
    clock = {**os.environ, "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": "+25h"}
    with open(tmp_path / "kinesalite.log", "w") as log:
        server = subprocess.Popen(["node", *argv], env=clock, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not fresh_lab.health("kinesis") and time.monotonic() < deadline:
            time.sleep(0.1)
        new = produce(adapter, 100, first=300)
        probe = adapter.probe(final=True)
        assert dropped_ids(probe, old + new) == set(range(300))
        assert (probe.retention_dropped, probe.depth) == (300, 100)
        consumer = adapter.consumer(0)
        try:
            assert sorted(seqs_of(read_all(consumer, 100))) == list(range(300, 400))
        finally:
            consumer.close()
        adapter.teardown()
    finally:
        adapter.close()
        server.terminate()
        server.wait(20)


def test_teardown_keeps_dead_letters_for_a_later_process(session_lab):
    spec = RunSpec(
        "t" + uuid.uuid4().hex[:8],
        "kinesis",
        session_lab.endpoint("kinesis"),
        parse({}),
        state_dir=session_lab.runtime.settings.state_dir,
    )
    adapter = adapter_for(spec)
    adapter.provision()
    produce(adapter, 1)
    consumer = adapter.consumer(0)
    [delivery] = receive(consumer, 1)
    consumer.dead_letter([(delivery, DeadLetterInfo("test", 1, 1.0, 1.0))])
    consumer.close()
    adapter.teardown(keep_dead_letters=True)
    adapter.close()
    store = CheckpointStore(f"lab-{spec.run_id}", spec.broker_dir() / "checkpoints")
    assert store.path.exists(), "the checkpoints stay with the streams"
    again = adapter_for(spec)  # as `lab dlq` does, later
    try:
        assert [letter.seq for letter in again.dead_letters(10)] == [0]
        assert again.redrive() == 1 and again.dead_letters(10) == []
    finally:
        again.teardown()
        again.close()
    assert not store.path.exists()


def test_up_message_kill_pause_restart_down(fresh_lab):
    started = time.monotonic()
    [status] = fresh_lab.up(["kinesis"])
    took = time.monotonic() - started
    assert status.state is BrokerState.HEALTHY, status
    assert status.pid and status.version == "kinesalite 3.3.3" and status.rss_bytes > 0
    assert took < 30, f"kinesalite took {took:.1f} s to answer"
    ep = fresh_lab.endpoint("kinesis")
    assert roundtrip(ep, b"before") == b"before"

    fresh_lab.pause("kinesis")
    assert not fresh_lab.health("kinesis")
    fresh_lab.resume("kinesis")
    assert fresh_lab.health("kinesis")

    fresh_lab.kill("kinesis")
    assert not fresh_lab.health("kinesis")
    restarted = fresh_lab.restart("kinesis")
    assert restarted.state is BrokerState.HEALTHY and restarted.pid != status.pid
    assert roundtrip(ep, b"after") == b"after"
    assert "listening at http://127.0.0.1" in fresh_lab.logs("kinesis")

    fresh_lab.down(["kinesis"])
    assert leftovers(fresh_lab.settings) == []
