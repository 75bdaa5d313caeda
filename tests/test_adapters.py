"""The adapter contract, checked against each real broker with the same test."""

import time
import uuid

import pytest

from lab import messages
from lab.brokers import adapter_for
from lab.brokers.base import Outgoing, RunSpec
from lab.recipes import parse

pytestmark = pytest.mark.brokers
BROKERS = ["kafka", "rabbitmq", "redis", "postgres"]


@pytest.fixture(params=BROKERS)
def adapter(request, session_lab):
    broker = request.param
    recipe = parse(
        {"partitions": 2, "consumers": {"prefetch": 50}, "redis": {"claim_idle": "500ms"}},
        "contract",
    )
    run_id = "t" + uuid.uuid4().hex[:8]
    spec = RunSpec(run_id, broker, session_lab.endpoint(broker), recipe)
    adapter = adapter_for(spec)
    adapter.provision()
    try:
        yield adapter
    finally:
        adapter.teardown()
        adapter.close()


def lab_messages(spec, count, producer=0, first=0):
    tag = messages.run_tag(spec.run_id)
    now = time.monotonic_ns()
    return [
        Outgoing(seq, now, messages.encode(tag, producer, seq, now, False, 100))
        for seq in range(first, first + count)
    ]


def produce(adapter, count, producer_id=0, first=0):
    producer = adapter.producer(producer_id)
    try:
        batch = lab_messages(adapter.spec, count, producer_id, first)
        acks = []
        for i in range(0, count, 100):
            producer.send(batch[i : i + 100])
            acks += producer.poll(0)
        acks += producer.flush(30)
    finally:
        producer.close()
    assert sorted(a.seq for a in acks) == list(range(first, first + count))
    assert all(a.ok for a in acks), [a.error for a in acks if not a.ok][:3]
    return acks


def drain(consumer, want, timeout=30.0, ack=True):
    """Receive until `want` deliveries arrived; return their sequence numbers."""
    seqs = []
    deadline = time.monotonic() + timeout
    while len(seqs) < want and time.monotonic() < deadline:
        batch = consumer.receive(50, 0.5)
        seqs += [messages.decode(d.payload).seq for d in batch]
        if ack and batch:
            consumer.ack(batch)
    return seqs


def wait_depth(adapter, want, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        depth = adapter.probe(final=True).depth
        if depth == want or time.monotonic() > deadline:
            return depth
        time.sleep(0.2)


def test_produce_probe_consume_ack(adapter):
    produce(adapter, 500)
    assert wait_depth(adapter, 500) == 500
    consumer = adapter.consumer(0)
    try:
        seqs = drain(consumer, 500)
    finally:
        consumer.close()
    assert sorted(seqs) == list(range(500)), "every message exactly once"
    assert wait_depth(adapter, 0) == 0
    live = adapter.probe()
    assert live.depth is not None and live.depth >= 0


def test_competing_consumers_share_the_work(adapter):
    produce(adapter, 400)
    first, second = adapter.consumer(0), adapter.consumer(1)
    try:
        got_first, got_second = [], []
        deadline = time.monotonic() + 30
        while len(got_first) + len(got_second) < 400 and time.monotonic() < deadline:
            for consumer, got in ((first, got_first), (second, got_second)):
                batch = consumer.receive(20, 0.2)
                got += [messages.decode(d.payload).seq for d in batch]
                if batch:
                    consumer.ack(batch)
    finally:
        first.close()
        second.close()
    assert sorted(got_first + got_second) == list(range(400))
    assert not set(got_first) & set(got_second)


def test_unacked_messages_are_delivered_again(adapter):
    """A consumer that goes away without acking: its messages go to another consumer."""
    produce(adapter, 100)
    quitter = adapter.consumer(0)
    held = drain(quitter, 10, ack=False)
    assert held, "the first consumer received nothing"
    quitter.close()
    survivor = adapter.consumer(1)
    try:
        seqs = drain(survivor, 100, timeout=60)
    finally:
        survivor.close()
    assert set(seqs) == set(range(100)), "nothing lost"
    assert set(held) <= set(seqs), "held messages were redelivered"


def test_rejected_messages_come_back(adapter):
    produce(adapter, 5)
    consumer = adapter.consumer(0)
    try:
        batch = []
        deadline = time.monotonic() + 20
        while len(batch) < 5 and time.monotonic() < deadline:
            batch += consumer.receive(5, 0.5)
        consumer.reject(batch)
        again = []
        deadline = time.monotonic() + 30
        while len(again) < 5 and time.monotonic() < deadline:
            got = consumer.receive(5, 0.5)
            again += got
            consumer.ack(got)
    finally:
        consumer.close()
    assert sorted(messages.decode(d.payload).seq for d in again) == list(range(5))
    # Brokers that count deliveries say this is at least the second; the others say 0.
    assert all(d.attempts == 0 or d.attempts >= 2 for d in again)


def test_settings_and_client_version(adapter):
    settings = adapter.settings()
    assert settings, "the durability mapping is recorded"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in settings.items())
    assert adapter.client_version()
    assert adapter.spec.endpoint.password is None or all(
        adapter.spec.endpoint.password not in v for v in settings.values()
    )


@pytest.fixture(params=BROKERS)
def retention_adapter(request, session_lab):
    """A queue that keeps at most about 200 messages (Kafka: about 200 messages' worth of
    bytes per partition, in small segments so deletion shows within seconds)."""
    broker = request.param
    recipe = parse({"partitions": 1, "retention": {"max_messages": 200}}, "retention")
    spec = RunSpec("t" + uuid.uuid4().hex[:8], broker, session_lab.endpoint(broker), recipe)
    adapter = adapter_for(spec)
    adapter.provision()
    try:
        yield adapter
    finally:
        adapter.teardown()
        adapter.close()


def dropped_ids(probe, acks) -> set[int]:
    """What the broker says retention deleted, as sequence numbers."""
    from array import array

    ids = set()
    if probe.dropped:
        packed = array("Q")
        packed.frombytes(probe.dropped)
        ids |= {messages.unpack(v)[1] for v in packed}
    for ack in acks:
        floor = probe.retention_floor.get(ack.partition)
        if floor is not None and 0 <= ack.position < floor:
            ids.add(ack.seq)
    return ids


def test_retention_names_what_it_deleted(retention_adapter):
    """Retention deletes the oldest messages; the broker's word names exactly those: with
    what a consumer can still get, they make up everything that was acked."""
    adapter = retention_adapter
    acks = []
    for first in range(0, 1000, 100):
        acks += produce(adapter, 100, first=first)
        time.sleep(0.1)  # segments roll by time and size: give them a chance
    dropped: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dropped |= dropped_ids(adapter.probe(), acks)
        if len(dropped) >= 500:
            break
        time.sleep(0.5)
    probe = adapter.probe(final=True)
    dropped |= dropped_ids(probe, acks)
    assert len(dropped) >= 500, f"retention deleted only {len(dropped)} of 1000"
    # The broker's own count agrees with the messages the lab could name.
    assert probe.retention_dropped == len(dropped)
    consumer = adapter.consumer(0)
    try:
        remaining = drain(consumer, 1000 - len(dropped), timeout=30)
    finally:
        consumer.close()
    assert not dropped & set(remaining), "a message both deleted and delivered"
    assert dropped | set(remaining) == set(range(1000)), "deleted + remaining == acked"
    assert max(dropped) < min(remaining), "retention deletes the oldest first"


def test_dead_letters_browse_and_redrive(adapter):
    from lab.brokers.base import DeadLetterInfo

    produce(adapter, 10)
    consumer = adapter.consumer(0)
    try:
        batch = []
        deadline = time.monotonic() + 20
        while len(batch) < 10 and time.monotonic() < deadline:
            batch += consumer.receive(10, 0.5)
        by_seq = {messages.decode(d.payload).seq: d for d in batch}
        doomed = [by_seq[s] for s in (2, 5, 7)]
        info = DeadLetterInfo("poison: processing failed", 3, 1000.0, 1002.5)
        consumer.dead_letter([(d, info) for d in doomed])
        consumer.ack([d for s, d in by_seq.items() if s not in (2, 5, 7)])
    finally:
        consumer.close()
    assert wait_depth(adapter, 0) == 0, "dead letters left the main queue"
    letters = adapter.dead_letters(100)
    assert sorted(letter.seq for letter in letters) == [2, 5, 7]
    for letter in letters:
        assert letter.reason == "poison: processing failed"
        assert letter.attempts == 3
        assert (letter.first_failure, letter.last_failure) == (1000.0, 1002.5)
        assert letter.run_id == adapter.spec.run_id and letter.producer == 0
    assert adapter.dead_letters(100) == letters or len(adapter.dead_letters(100)) == 3, (
        "browsing does not consume"
    )
    assert adapter.probe(final=True).dead_letters == 3
    assert adapter.redrive() == 3
    assert adapter.dead_letters(100) == []
    assert adapter.probe(final=True).dead_letters == 0
    consumer = adapter.consumer(1)
    try:
        again = drain(consumer, 3)
    finally:
        consumer.close()
    assert sorted(again) == [2, 5, 7], "redriven messages are delivered again"


def test_teardown_can_keep_dead_letters(session_lab):
    from lab.brokers.base import DeadLetterInfo

    for broker in BROKERS:
        spec = RunSpec("t" + uuid.uuid4().hex[:8], broker, session_lab.endpoint(broker), parse({}))
        adapter = adapter_for(spec)
        adapter.provision()
        produce(adapter, 1)
        consumer = adapter.consumer(0)
        try:
            batch = []
            deadline = time.monotonic() + 20
            while not batch and time.monotonic() < deadline:
                batch = consumer.receive(1, 0.5)
            consumer.dead_letter([(batch[0], DeadLetterInfo("test", 1, 1.0, 1.0))])
        finally:
            consumer.close()
        adapter.teardown(keep_dead_letters=True)
        adapter.close()
        again = adapter_for(spec)  # as `lab dlq` does, later, from another process
        try:
            assert [letter.seq for letter in again.dead_letters(10)] == [0], broker
        finally:
            again.teardown()
            again.close()
