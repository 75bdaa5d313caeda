"""What the adapter tests share: making a run's adapter, producing lab messages through
it, and waiting for what a consumer or the broker reports."""

import time
import uuid
from array import array
from collections.abc import Iterator
from contextlib import contextmanager

from lab import messages
from lab.brokers import adapter_for
from lab.brokers.contract import BrokerAdapter, Outgoing, RunSpec
from lab.recipes import parse


def new_adapter(session_lab, broker: str, recipe: dict | None = None, name: str = "test"):
    """An adapter for a fresh run of `recipe` on the session's broker (not provisioned)."""
    spec = RunSpec(
        "t" + uuid.uuid4().hex[:8],
        broker,
        session_lab.endpoint(broker),
        parse(recipe or {}, name),
        state_dir=session_lab.runtime.settings.state_dir,
    )
    return adapter_for(spec)


@contextmanager
def provisioned(adapter: BrokerAdapter) -> Iterator[BrokerAdapter]:
    """The adapter with its run's resources, torn down afterwards whatever happens."""
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


def receive(consumer, want, timeout=30.0):
    """Receive until `want` deliveries arrived (or the timeout); nothing is acked."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += consumer.receive(want - len(got), 0.5)
    return got


def dead_letter_some(adapter, total, doomed, info, consumer_id=0):
    """Receive `total` messages; dead-letter the seqs in `doomed` in that order, ack the rest."""
    consumer = adapter.consumer(consumer_id)
    try:
        by_seq = {messages.decode(d.payload).seq: d for d in receive(consumer, total)}
        consumer.dead_letter([(by_seq[s], info) for s in doomed])
        consumer.ack([d for s, d in by_seq.items() if s not in doomed])
    finally:
        consumer.close()


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


def dropped_ids(probe, acks) -> set[int]:
    """What the broker says retention deleted, as sequence numbers."""
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
