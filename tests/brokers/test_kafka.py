"""Kafka beyond the shared contract: both clients, commit points, retries, retention and
dead letters, quiet logs.

The contract tests of tests/test_adapters.py run here a second time, with kafka-python
doing the work; the Kafka-specific tests run with both clients.
"""

import inspect
import logging
import time

import pytest
from confluent_kafka.admin import AdminClient

from lab import messages
from lab.brokers import adapter_for
from lab.brokers.contract import DeadLetterInfo, Delivery, RunSpec
from lab.brokers.kafka import dlq as kafka_dlq
from lab.brokers.kafka.adapter import KafkaAdapter
from lab.brokers.kafka.common import CLIENT_LOG, COMMIT_INTERVAL, OffsetTracker
from lab.endpoints import Endpoint
from lab.recipes import parse
from tests.brokers import test_contract as contract
from tests.brokers.helpers import new_adapter, produce, provisioned, receive

CLIENTS = ["confluent", "kafka-python"]


def make_adapter(session_lab, client, **recipe):
    recipe = {"partitions": 2, "kafka": {"client": client}, **recipe}
    return new_adapter(session_lab, "kafka", recipe)


@pytest.fixture
def adapter(session_lab):
    """The contract's adapter, with kafka-python doing the work."""
    with provisioned(make_adapter(session_lab, "kafka-python", consumers={"prefetch": 50})) as a:
        yield a


@pytest.fixture(params=CLIENTS)
def single(request, session_lab):
    """One partition, so offsets and commit points are predictable."""
    with provisioned(make_adapter(session_lab, request.param, partitions=1)) as adapter:
        yield adapter


@pytest.fixture(params=CLIENTS)
def squeezed(request, session_lab):
    """One partition that keeps about 200 messages' worth of bytes (the contract's)."""
    adapter = make_adapter(
        session_lab, request.param, partitions=1, retention={"max_messages": 200}
    )
    with provisioned(adapter):
        yield adapter


def seqs(deliveries):
    return [messages.decode(d.payload).seq for d in deliveries]


def _takes_the_adapter(name):
    return list(inspect.signature(getattr(contract, name)).parameters) == ["adapter"]


@pytest.mark.brokers
@pytest.mark.parametrize(
    "check", [n for n in dir(contract) if n.startswith("test_") and _takes_the_adapter(n)]
)
def test_contract_with_kafka_python(adapter, check):
    getattr(contract, check)(adapter)


@pytest.mark.brokers
def test_retention_contract_with_kafka_python(session_lab):
    adapter = make_adapter(
        session_lab, "kafka-python", partitions=1, retention={"max_messages": 200}
    )
    with provisioned(adapter):
        contract.test_retention_names_what_it_deleted(adapter)


@pytest.mark.brokers
def test_commit_never_passes_an_unacked_message(single):
    produce(single, 10)
    consumer = single.consumer(0)
    try:
        batch = receive(consumer, 10)
        assert seqs(batch) == list(range(10))
        consumer.ack(batch[:3] + batch[4:])
    finally:
        consumer.close()
    assert single.probe(final=True).depth == 7, "committed up to the unacked message"
    again = single.consumer(1)
    try:
        assert seqs(receive(again, 7)) == list(range(3, 10))
    finally:
        again.close()


@pytest.mark.brokers
def test_acks_say_where_the_broker_put_each_message(single):
    acks = produce(single, 20)
    assert sorted((a.partition, a.position) for a in acks) == [(0, n) for n in range(20)]
    probe = single.probe(final=True)
    # No retention in this recipe: nothing to report, and no floor to name messages by.
    assert (probe.retention_dropped, probe.retention_floor) == (None, {})
    assert probe.dead_letters == 0


@pytest.mark.brokers
def test_a_rejected_message_goes_to_the_end_and_counts_its_attempts(single):
    produce(single, 5)
    consumer = single.consumer(0)
    try:
        first = receive(consumer, 5)
        assert [d.attempts for d in first] == [1] * 5
        consumer.reject([first[1]])
        consumer.ack(first[:1] + first[2:])
        second = receive(consumer, 1)
        assert (seqs(second), second[0].attempts) == ([1], 2)
        assert second[0].handle.offset == 5, "the retry is a new record at the end"
        consumer.reject(second)
        third = receive(consumer, 1)
        assert (seqs(third), third[0].attempts) == ([1], 3)
        # The worker's own first failure is later than the record's: the earlier one wins.
        info = DeadLetterInfo("poison", 3, time.time() + 60, time.time() + 61)
        consumer.dead_letter([(third[0], info)])
        assert receive(consumer, 1, timeout=2) == [], "nothing left to deliver"
    finally:
        consumer.close()
    assert single.probe(final=True).depth == 0, "every original and retry is committed"
    [letter] = single.dead_letters(10)
    assert (letter.seq, letter.attempts, letter.reason) == (1, 3, "poison")
    assert letter.first_failure < info.first_failure
    assert letter.last_failure == info.last_failure


@pytest.mark.brokers
def test_kept_dead_letters_outlive_the_run(single):
    produce(single, 5)
    consumer = single.consumer(0)
    try:
        batch = receive(consumer, 5)
        info = DeadLetterInfo("poison", 2, 10.0, 20.0)
        consumer.dead_letter([(batch[1], info), (batch[3], info)])
        consumer.ack(batch[:1] + batch[2:3] + batch[4:])
    finally:
        consumer.close()
    single.teardown(keep_dead_letters=True)
    single.close()
    # As `lab dlq` does, from another process; for a run still going, it knows only the
    # run id (a default recipe: 4 partitions, not 1).
    recipe = parse({"kafka": {"client": single.spec.options.client}})
    later = adapter_for(RunSpec(single.spec.run_id, "kafka", single.spec.endpoint, recipe))
    try:
        letters = later.dead_letters(10)
        assert [(x.id, x.seq) for x in letters] == [("0:0", 1), ("0:1", 3)], "oldest first"
        assert later.dead_letters(1) == letters[:1]
        assert later.redrive() == 2
        assert later.dead_letters(10) == []
        assert later.probe(final=True).dead_letters == 0
        assert later.redrive() == 0
        again = later.consumer(1)
        try:
            redriven = receive(again, 2)
            again.ack(redriven)
        finally:
            again.close()
        assert sorted(seqs(redriven)) == [1, 3]
        assert [d.attempts for d in redriven] == [1, 1], "attempts start again"
    finally:
        later.teardown()
        later.close()
    ep = single.spec.admin
    topics = AdminClient({"bootstrap.servers": f"{ep.host}:{ep.port}"}).list_topics(timeout=10)
    assert not {single.spec.queue, single.spec.dead_letter_queue} & set(topics.topics)


@pytest.mark.brokers
def test_a_consumer_behind_retention_moves_on_to_the_oldest_kept(squeezed):
    produce(squeezed, 10)
    consumer = squeezed.consumer(0)
    try:
        consumer.ack(receive(consumer, 10))
    finally:
        consumer.close()  # committed at offset 10
    for first in range(10, 1010, 100):
        produce(squeezed, 100, first=first)
        time.sleep(0.1)  # segments roll by time: let a few of them fill
    deadline = time.monotonic() + 60
    floor = 0
    while floor <= 10 and time.monotonic() < deadline:
        time.sleep(0.5)
        floor = squeezed.probe().retention_floor[0]
    assert floor > 10, "retention deleted the committed position"
    assert squeezed.probe(final=True).retention_dropped == floor
    later = squeezed.consumer(1)
    try:
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 1010 - floor and time.monotonic() < deadline:
            batch = later.receive(100, 0.5)  # a BrokerError here fails the test
            later.ack(batch)
            got += seqs(batch)
    finally:
        later.close()
    # Offsets and sequences coincide here: one producer, one partition, from offset 0.
    assert got == list(range(floor, 1010))


@pytest.mark.brokers
def test_close_commits_what_was_acked(single):
    produce(single, 100)
    consumer = single.consumer(0)
    try:
        batch = receive(consumer, 60)
        consumer.ack(batch[:40])
    finally:
        consumer.close()
    # No waiting: close() committed synchronously.
    assert single.probe(final=True).depth == 60


@pytest.mark.brokers
def test_receive_does_not_wait_for_a_full_batch(single):
    produce(single, 1)
    consumer = single.consumer(0)
    try:
        receive(consumer, 0, timeout=0)
        started = time.monotonic()
        got = consumer.receive(100, 20.0)
        elapsed = time.monotonic() - started
    finally:
        consumer.close()
    assert len(got) == 1
    assert elapsed < 10, "receive waited for 100 messages instead of returning the one"


@pytest.mark.brokers
def test_clients_stay_quiet_and_teardown_deletes_the_topic(single, capfd):
    produce(single, 50)
    consumer = single.consumer(0)
    try:
        consumer.ack(receive(consumer, 50))
    finally:
        consumer.close()
    single.teardown()
    ep = single.spec.admin
    admin = AdminClient({"bootstrap.servers": f"{ep.host}:{ep.port}"})
    assert single.spec.queue not in admin.list_topics(timeout=10).topics
    assert capfd.readouterr().err == ""


@pytest.mark.brokers
def test_read_settings_keeps_its_admin_client_until_the_answer(single, caplog):
    """A client dropped while its request is out logs "Handle is terminating" and fails
    the future: read_settings holds it until the broker has answered."""
    with caplog.at_level(logging.DEBUG, logger=CLIENT_LOG.name):
        for _ in range(3):
            assert single.read_settings()["min.insync.replicas"] == "1"
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "terminating" in m.lower()], said


@pytest.mark.parametrize(
    ("durability", "acks", "idempotence"), [("safe", "all", "true"), ("fast", "1", "false")]
)
@pytest.mark.parametrize("client", CLIENTS)
def test_settings_record_the_durability_mapping(client, durability, acks, idempotence):
    recipe = parse({"durability": durability, "kafka": {"client": client}}, "kafka")
    adapter = KafkaAdapter(
        RunSpec("x", "kafka", Endpoint("kafka", "kafka", "127.0.0.1", 9), recipe)
    )
    settings = adapter.settings()
    assert (settings["acks"], settings["idempotence"]) == (acks, idempotence)
    assert settings["client"].startswith(
        "kafka-python" if client == "kafka-python" else "confluent"
    )


def deliver(tracker, partition, offsets):
    return [Delivery(b"", tracker.delivered(partition, off)) for off in offsets]


def test_tracker_commits_the_lowest_unfinished_offset():
    tracker = OffsetTracker()
    tracker.assigned([0])
    first, second, third = deliver(tracker, 0, [5, 6, 7])
    tracker.acked([third])
    assert tracker.due(0.0) == {0: 5}, "5 and 6 are still out"
    tracker.acked([first])
    assert tracker.due(1.0) == {0: 6}
    tracker.acked([second])
    assert tracker.due(2.0) == {0: 8}


def test_tracker_coalesces_commits_to_one_per_interval():
    tracker = OffsetTracker()
    tracker.assigned([0, 1])
    a, b = deliver(tracker, 0, [0, 1])
    (c,) = deliver(tracker, 1, [0])
    tracker.acked([a])
    assert tracker.due(10.0) == {0: 1}
    tracker.acked([b, c])
    assert tracker.due(10.0 + COMMIT_INTERVAL / 2) == {}, "too soon after the last commit"
    assert tracker.due(10.0 + COMMIT_INTERVAL) == {0: 2, 1: 1}, "both acks in one commit"
    assert tracker.due(20.0) == {}, "nothing moved"
    assert tracker.revoked([0, 1]) == {0: 2, 1: 1}, "a revoke commits whatever is due"


def test_tracker_ignores_deliveries_from_a_revoked_partition():
    tracker = OffsetTracker()
    tracker.assigned([0, 1])
    old = deliver(tracker, 0, [1, 2])
    assert all(tracker.owns(d) for d in old)
    assert tracker.revoked([0]) == {}, "nothing acked, nothing to commit"
    tracker.assigned([0])
    assert not any(tracker.owns(d) for d in old), "not ours to retry or dead-letter"
    tracker.acked(old)
    assert tracker.due(0.0) == {}
    assert tracker.delivered(2, 0) is None, "never assigned"


def test_retry_headers_count_attempts_and_keep_the_first_failure():
    assert kafka_dlq.attempts_of(None) == (1, None)
    headers = kafka_dlq.retry_headers(1, None, 1000.5)
    assert kafka_dlq.attempts_of(headers) == (2, 1000.5)
    assert kafka_dlq.attempts_of(kafka_dlq.retry_headers(2, 1000.5, 2000.0)) == (3, 1000.5)


def test_retention_maps_to_topic_configs():
    def configs(**retention):
        recipe = parse({"partitions": 2, "message": {"size": 100}, "retention": retention})
        return kafka_dlq.topic_configs(recipe)

    assert configs() == {}, "no limit, no configs: Kafka's defaults"
    by_count = configs(max_messages=200)
    per_record = 100 + kafka_dlq.RECORD_OVERHEAD
    assert by_count["retention.bytes"] == str(200 * per_record // 2), "per partition"
    assert int(by_count["segment.bytes"]) == kafka_dlq.MIN_SEGMENT_BYTES
    assert "retention.ms" not in by_count
    by_age = configs(max_age="10s")
    assert (by_age["retention.ms"], by_age["segment.ms"]) == ("10000", "1000")
    assert "retention.bytes" not in by_age, "segments of Kafka's default size roll by time"
    both = configs(max_age="10s", max_bytes=8_000_000)
    assert both["retention.bytes"] == "4000000"
    assert int(both["segment.ms"]) <= 1000


def test_settings_record_the_retention_and_dead_letter_mapping():
    recipe = parse({"partitions": 2, "retention": {"max_messages": 200}})
    adapter = KafkaAdapter(
        RunSpec("x", "kafka", Endpoint("kafka", "kafka", "127.0.0.1", 9), recipe)
    )
    settings = adapter.settings()
    assert "retention.bytes=12000" in settings["retention"]
    assert "200 messages" in settings["retention_max_messages"]
    assert "lab-x.dlq" in settings["dead_letters"]
