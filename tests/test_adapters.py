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
