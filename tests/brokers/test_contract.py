"""The adapter contract, checked against each real broker with the same test."""

import time
import uuid

import pytest

from lab import brokers as registry
from lab import messages
from lab.brokers import adapter_for
from lab.brokers.contract import DeadLetterInfo, RunSpec
from lab.recipes import parse
from tests.brokers.helpers import (
    dead_letter_some,
    drain,
    dropped_ids,
    new_adapter,
    produce,
    provisioned,
    receive,
    wait_depth,
)

pytestmark = pytest.mark.brokers


@pytest.fixture(params=registry.names())
def adapter(request, session_lab):
    recipe = {"partitions": 2, "consumers": {"prefetch": 50}, "redis": {"claim_idle": "500ms"}}
    with provisioned(new_adapter(session_lab, request.param, recipe, "contract")) as adapter:
        yield adapter


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
    if registry.get(adapter.spec.broker).reports_depth:
        assert live.depth is not None and live.depth >= 0
    else:
        assert live.depth is None, "a broker without a backlog count must not make one up"


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
        batch = receive(consumer, 5, timeout=20)
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


@pytest.fixture(params=registry.names())
def retention_adapter(request, session_lab):
    """A queue that keeps at most about 200 messages (Kafka: about 200 messages' worth of
    bytes per partition, in small segments so deletion shows within seconds)."""
    recipe = {"partitions": 1, "retention": {"max_messages": 200}}
    with provisioned(new_adapter(session_lab, request.param, recipe, "retention")) as adapter:
        yield adapter


def test_retention_names_what_it_deleted(retention_adapter):
    """Retention deletes the oldest messages; the broker's word names exactly those: with
    what a consumer can still get, they make up everything that was acked."""
    adapter = retention_adapter
    if "max_messages" not in registry.get(adapter.spec.broker).retention_limits:
        _keeps_everything(adapter)
        return
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


def _keeps_everything(adapter):
    """A broker without a count limit (SQS has none) deletes nothing, names nothing as
    deleted, and says in its settings that the limit was not applied."""
    acks = produce(adapter, 1000)
    probe = adapter.probe(final=True)
    assert probe.retention_dropped is None and not dropped_ids(probe, acks)
    assert any("max_messages" in v for v in adapter.settings().values())
    consumer = adapter.consumer(0)
    try:
        assert sorted(drain(consumer, 1000, timeout=60)) == list(range(1000))
    finally:
        consumer.close()


def test_dead_letters_browse_and_redrive(adapter):
    produce(adapter, 10)
    info = DeadLetterInfo("poison: processing failed", 3, 1000.0, 1002.5)
    dead_letter_some(adapter, 10, [2, 5, 7], info)
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
    for broker in registry.names():
        state = session_lab.runtime.settings.state_dir
        ep = session_lab.endpoint(broker)
        spec = RunSpec("t" + uuid.uuid4().hex[:8], broker, ep, parse({}), state_dir=state)
        adapter = adapter_for(spec)
        adapter.provision()
        produce(adapter, 1)
        dead_letter_some(adapter, 1, [0], DeadLetterInfo("test", 1, 1.0, 1.0))
        adapter.teardown(keep_dead_letters=True)
        adapter.close()
        again = adapter_for(spec)  # as `lab dlq` does, later, from another process
        try:
            assert [letter.seq for letter in again.dead_letters(10)] == [0], broker
        finally:
            again.teardown()
            again.close()
