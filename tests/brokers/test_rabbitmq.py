"""RabbitMQ beyond the shared contract: quorum queues, the confirm window, ack framing,
returned messages, a broker that dies under its clients, attempts counted by republishing,
retention by age and dead letters on quorum queues, pub-sub's queue per subscriber and
request-reply's direct reply-to."""

import time
from dataclasses import replace

import pytest

from lab import messages
from lab.brokers import adapter_for
from lab.brokers.contract import BrokerError, DeadLetterInfo
from tests.brokers.helpers import (
    dead_letter_some,
    drain,
    dropped_ids,
    lab_messages,
    new_adapter,
    produce,
    provisioned,
    receive,
    wait_depth,
)

pytestmark = pytest.mark.brokers


def make_adapter(session_lab, retention=None, **rabbitmq):
    recipe = {"consumers": {"prefetch": 50}, "rabbitmq": rabbitmq, "retention": retention or {}}
    return new_adapter(session_lab, "rabbitmq", recipe)


@pytest.fixture(params=["classic", "quorum"])
def adapter(request, session_lab):
    with provisioned(make_adapter(session_lab, queue_type=request.param)) as adapter:
        yield adapter


@pytest.fixture
def quorum(session_lab):
    with provisioned(make_adapter(session_lab, queue_type="quorum")) as adapter:
        yield adapter


def test_quorum_produce_consume_and_redeliver(quorum):
    produce(quorum, 300)
    assert wait_depth(quorum, 300) == 300
    quitter = quorum.consumer(0)
    held = receive(quitter, 20)
    assert [d.attempts for d in held] == [1] * 20, "a quorum queue counts the first delivery"
    quitter.close()
    survivor = quorum.consumer(1)
    try:
        again = []
        deadline = time.monotonic() + 30
        while len(again) < 300 and time.monotonic() < deadline:
            batch = survivor.receive(50, 0.5)
            again += batch
            survivor.ack(batch)
    finally:
        survivor.close()
    seqs = {messages.decode(d.payload).seq: d.attempts for d in again}
    assert sorted(seqs) == list(range(300))
    assert all(seqs[messages.decode(d.payload).seq] >= 2 for d in held)
    assert wait_depth(quorum, 0) == 0


def test_attempts_count_up_after_reject(adapter):
    """A quorum queue counts deliveries; a classic queue counts nothing, so reject()
    republishes with the attempt in a header. The consumer sees the same either way."""
    produce(adapter, 1)
    consumer = adapter.consumer(0)
    try:
        seen = []
        for _ in range(3):
            [delivery] = receive(consumer, 1)
            seen.append(delivery.attempts)
            consumer.reject([delivery])
        [delivery] = receive(consumer, 1)
        consumer.ack([delivery])
        seen.append(delivery.attempts)
    finally:
        consumer.close()
    assert seen == [1, 2, 3, 4]
    assert messages.decode(delivery.payload).seq == 0
    assert wait_depth(adapter, 0) == 0, "each original was acked once its copy was confirmed"


def test_out_of_order_acks_settle_everything(adapter):
    """Acks in an order that forces single acks, then a multiple ack over the gaps."""
    produce(adapter, 40)
    consumer = adapter.consumer(0)
    try:
        got = receive(consumer, 40)
        assert len(got) == 40
        consumer.ack(got[1::2])  # gaps: one frame per tag
        consumer.ack(got[0:10:2])  # fills the first gaps: a multiple ack is now safe
        consumer.reject(got[10:20:2])
        consumer.ack(got[20::2])
        back = receive(consumer, 5)
        consumer.ack(back)
    finally:
        consumer.close()
    assert sorted(messages.decode(d.payload).seq for d in back) == list(range(10, 20, 2))
    assert wait_depth(adapter, 0) == 0
    # Nothing was left unacked: a fresh consumer finds the queue empty.
    late = adapter.consumer(1)
    try:
        assert drain(late, 1, timeout=1.5) == []
    finally:
        late.close()


def test_confirm_window_bounds_messages_in_flight(session_lab):
    adapter = make_adapter(session_lab, confirm_window=10)
    adapter.provision()
    producer = adapter.producer(0)
    try:
        batch = lab_messages(adapter.spec, 500)
        acks = []
        for i in range(0, 500, 50):
            producer.send(batch[i : i + 50])
            assert len(producer._inflight) <= 10
            acks += producer.poll(0)
        acks += producer.flush(30)
        assert sorted(a.seq for a in acks) == list(range(500))
        assert all(a.ok for a in acks)
        # The frame coalescing relies on pika's private write buffer: see it still exists.
        assert hasattr(producer._session._conn._transport, "_tx_buffers")
    finally:
        producer.close()
        adapter.teardown()
        adapter.close()


def test_unroutable_messages_are_failures(session_lab):
    adapter = make_adapter(session_lab)
    adapter.provision()
    adapter.teardown()  # publishes to the default exchange now route nowhere
    producer = adapter.producer(0)
    try:
        producer.send(lab_messages(adapter.spec, 5))
        acks = producer.flush(10)
        adapter.teardown()  # deleting a queue that is gone already is no error
    finally:
        producer.close()
        adapter.close()
    assert sorted(a.seq for a in acks) == list(range(5))
    assert not any(a.ok for a in acks)
    assert all("returned" in a.error for a in acks)


def test_missing_queue_is_a_broker_error(session_lab):
    adapter = make_adapter(session_lab)
    try:
        with pytest.raises(BrokerError, match="NOT_FOUND"):
            adapter.probe()
        with pytest.raises(BrokerError, match="NOT_FOUND"):
            adapter.consumer(0)
    finally:
        adapter.close()


def test_clients_fail_and_probe_recovers_when_the_broker_is_killed(session_lab):
    adapter = make_adapter(session_lab)
    adapter.provision()
    producer = adapter.producer(0)
    consumer = adapter.consumer(0)
    try:
        assert adapter.probe().depth == 0
        # RabbitMQ 3.10 logs a durable queue's declaration to disk asynchronously (Mnesia):
        # a SIGKILL within milliseconds of declare-ok can lose the queue, which this test
        # saw about one run in twenty. The test is about the clients, not that window.
        time.sleep(1.0)
        session_lab.runtime.kill("rabbitmq")
        with pytest.raises(BrokerError):
            for _ in range(20):
                producer.send(lab_messages(adapter.spec, 10))
                producer.poll(0.5)
        with pytest.raises(BrokerError):
            consumer.receive(10, 5)
        with pytest.raises(BrokerError):
            adapter.probe()
        session_lab.runtime.restart("rabbitmq")
        assert adapter.probe(final=True).depth == 0, "the probe reconnects on its own"
    finally:
        producer.close()
        consumer.close()
        adapter.teardown()
        adapter.close()


# --- attempts, retention and dead letters ----------------------------------------------


@pytest.fixture
def classic(session_lab):
    with provisioned(make_adapter(session_lab, queue_type="classic")) as adapter:
        yield adapter


def test_classic_counts_a_redelivery_after_a_consumer_died(classic):
    produce(classic, 3)
    quitter = classic.consumer(0)
    held = receive(quitter, 3)
    assert [d.attempts for d in held] == [1, 1, 1]
    quitter.reject(held[:1])  # attempt 1 failed: its copy says so
    [copy] = receive(quitter, 1)
    assert copy.attempts == 2
    quitter.close()  # all three go back to the queue, marked redelivered
    survivor = classic.consumer(1)
    try:
        again = receive(survivor, 3)
        survivor.ack(again)
    finally:
        survivor.close()
    assert sorted(d.attempts for d in again) == [2, 2, 3]


def wait_dropped(adapter, acks, want, timeout=30.0):
    """Probe like the engine does until `want` messages were named; then a final probe."""
    dropped: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(dropped) < want and time.monotonic() < deadline:
        dropped |= dropped_ids(adapter.probe(), acks)
        time.sleep(0.2)
    final = adapter.probe(final=True)
    return dropped | dropped_ids(final, acks), final


def test_age_retention_names_expired_messages(session_lab):
    with provisioned(make_adapter(session_lab, retention={"max_age": "500ms"})) as adapter:
        assert adapter.probe().retention_dropped == 0, "a limit and nothing dropped yet"
        settings = adapter.settings()
        assert "x-message-ttl(ms)=500" in settings["retention"]
        assert f"{adapter.spec.queue}.dropped" in settings["retention"]
        acks = produce(adapter, 100)
        dropped, final = wait_dropped(adapter, acks, 100)
        assert dropped == set(range(100))
        assert final.retention_dropped == 100
        assert final.detail["dropped_by_reason"] == {"expired": 100}
        assert final.depth == 0
        assert adapter.probe(final=True).dropped == b"", "each drop is named once"


def test_no_retention_means_no_retention_count(classic):
    produce(classic, 5)
    probe = classic.probe(final=True)
    assert probe.retention_dropped is None and probe.dropped == b""
    assert classic.settings()["retention"] == "none"


def test_quorum_retention_and_dead_letters(session_lab):
    adapter = make_adapter(session_lab, retention={"max_messages": 50}, queue_type="quorum")
    with provisioned(adapter):
        acks = produce(adapter, 200)
        dropped, final = wait_dropped(adapter, acks, 150)
        assert dropped == set(range(150)), "drop-head deletes the oldest"
        assert final.retention_dropped == 150
        assert final.detail["dropped_by_reason"] == {"maxlen": 150}

        info = DeadLetterInfo("poison: processing failed", 3, 1000.25, 1002.5)
        dead_letter_some(adapter, 50, [170, 160, 190], info)
        letters = adapter.dead_letters(10)
        assert [d.seq for d in letters] == [170, 160, 190], "oldest dead letter first"
        assert adapter.dead_letters(10) == letters, "browsing consumes nothing, order stays"
        assert [d.seq for d in adapter.dead_letters(2)] == [170, 160]
        assert adapter.dead_letters(10) == letters, "a partial browse keeps the order too"
        assert {(d.reason, d.attempts, d.first_failure, d.last_failure) for d in letters} == {
            ("poison: processing failed", 3, 1000.25, 1002.5)
        }
        assert adapter.probe(final=True).dead_letters == 3

        assert adapter.redrive() == 3
        assert adapter.probe(final=True).dead_letters == 0
        consumer = adapter.consumer(1)
        try:
            back = receive(consumer, 3)
            consumer.ack(back)
        finally:
            consumer.close()
        assert [messages.decode(d.payload).seq for d in back] == [170, 160, 190]
        assert [d.attempts for d in back] == [1, 1, 1], "redriven messages start again"


def test_classic_redrive_strips_attempts(classic):
    produce(classic, 1)
    consumer = classic.consumer(0)
    try:
        [delivery] = receive(consumer, 1)
        consumer.reject([delivery])
        [delivery] = receive(consumer, 1)
        assert delivery.attempts == 2
        consumer.dead_letter([(delivery, DeadLetterInfo("test", 2, 1.0, 2.0))])
    finally:
        consumer.close()
    [letter] = classic.dead_letters(5)
    assert letter.attempts == 2 and letter.id == classic.dead_letters(5)[0].id, "a stable id"
    assert classic.redrive() == 1
    consumer = classic.consumer(1)
    try:
        [delivery] = receive(consumer, 1)
        consumer.ack([delivery])
    finally:
        consumer.close()
    assert delivery.attempts == 1


def test_dead_letter_without_a_dlq_fails_and_keeps_the_message(classic):
    """A dead letter no queue took is an error, and the original is not acked."""
    produce(classic, 1)
    classic._admin_call(10, "queue_delete", classic.spec.dead_letter_queue)
    consumer = classic.consumer(0)
    try:
        [delivery] = receive(consumer, 1)
        with pytest.raises(BrokerError, match="returned"):
            consumer.dead_letter([(delivery, DeadLetterInfo("test", 1, 1.0, 1.0))])
    finally:
        consumer.close()
    again = classic.consumer(1)
    try:
        assert drain(again, 1) == [0], "the message is back in the main queue"
    finally:
        again.close()


def test_kept_dead_letters_of_a_retention_run(session_lab):
    """`lab dlq` browses and probes a run torn down with its dead letters kept: its
    `.dropped` queue is gone by then, and the probe says it does not know."""
    adapter = make_adapter(session_lab, retention={"max_messages": 100})
    adapter.provision()
    produce(adapter, 1)
    dead_letter_some(adapter, 1, [0], DeadLetterInfo("test", 1, 1.0, 1.0))
    adapter.teardown(keep_dead_letters=True)
    adapter.close()
    again = adapter_for(adapter.spec)
    try:
        assert [d.seq for d in again.dead_letters(10)] == [0]
        probe = again.probe(final=True)
        assert probe.dead_letters == 1 and probe.retention_dropped is None
    finally:
        again.teardown()
        again.close()


def test_pub_sub_fills_a_queue_per_subscriber_and_returns_what_none_took(session_lab):
    recipe = {"pattern": "pub-sub", "subscribers": {"count": 2}}
    with provisioned(new_adapter(session_lab, "rabbitmq", recipe)) as adapter:
        produce(adapter, 30)
        assert wait_depth(adapter, 60) == 60
        assert adapter.probe().subscriber_depths == {"sub-1": 30, "sub-2": 30}
        for sub in ("sub-1", "sub-2"):
            consumer = adapter_for(replace(adapter.spec, subscriber=sub)).consumer(0)
            try:
                assert sorted(drain(consumer, 30)) == list(range(30))
            finally:
                consumer.close()
        assert wait_depth(adapter, 0) == 0
        for sub in ("sub-1", "sub-2"):  # the exchange stays, bound to nothing
            adapter._admin_call(10, "queue_delete", adapter.spec.group_of(sub))
        producer = adapter.producer(0)
        try:
            producer.send(lab_messages(adapter.spec, 5))
            acks = producer.flush(10)
        finally:
            producer.close()
    assert sorted(a.seq for a in acks) == list(range(5))
    assert not any(a.ok for a in acks) and all("returned" in a.error for a in acks)


def test_direct_reply_to_answers_on_the_requesters_channel_after_its_producer_closed(
    session_lab,
):
    recipe = {"pattern": "request-reply", "producers": {"count": 2}}
    with provisioned(new_adapter(session_lab, "rabbitmq", recipe)) as adapter:
        requesters = [adapter.producer(i) for i in range(2)]
        inboxes = [adapter.replies(i) for i in range(2)]
        consumer, replier = adapter.consumer(0), None
        try:
            for i, producer in enumerate(requesters):
                producer.send(lab_messages(adapter.spec, 10, producer=i))
                assert all(a.ok for a in producer.flush(10))
                producer.close()  # a requester waits for its last replies without it
            replier = adapter.replier(0)
            got = receive(consumer, 20)
            headers = [d.payload[: messages.HEADER_SIZE] for d in got]
            replier.send([(messages.decode(h).producer, h) for h in headers])
            consumer.ack(got)
            for i, inbox in enumerate(inboxes):
                replies = []
                deadline = time.monotonic() + 10
                while len(replies) < 10 and time.monotonic() < deadline:
                    replies += inbox.receive(0.5)
                assert sorted(messages.decode(r).seq for r in replies) == list(range(10))
                assert {messages.decode(r).producer for r in replies} == {i}
        finally:
            for client in (*inboxes, consumer, replier):
                if client is not None:
                    client.close()
