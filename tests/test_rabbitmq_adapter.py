"""RabbitMQ beyond the shared contract: quorum queues, the confirm window, ack framing,
returned messages and a broker that dies under its clients."""

import time
import uuid

import pytest

from lab import messages
from lab.brokers import adapter_for
from lab.brokers.base import BrokerError, RunSpec
from lab.recipes import parse
from tests.test_adapters import drain, lab_messages, produce, wait_depth

pytestmark = pytest.mark.brokers


def make_adapter(session_lab, **rabbitmq):
    recipe = parse({"consumers": {"prefetch": 50}, "rabbitmq": rabbitmq}, "rabbitmq")
    spec = RunSpec("t" + uuid.uuid4().hex[:8], "rabbitmq", session_lab.endpoint("rabbitmq"), recipe)
    return adapter_for(spec)


@pytest.fixture(params=["classic", "quorum"])
def adapter(request, session_lab):
    adapter = make_adapter(session_lab, queue_type=request.param)
    adapter.provision()
    try:
        yield adapter
    finally:
        adapter.teardown()
        adapter.close()


@pytest.fixture
def quorum(session_lab):
    adapter = make_adapter(session_lab, queue_type="quorum")
    adapter.provision()
    try:
        yield adapter
    finally:
        adapter.teardown()
        adapter.close()


def receive(consumer, want, timeout=20.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += consumer.receive(want - len(got), 0.5)
    return got


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


def test_quorum_attempts_count_up_after_reject(quorum):
    produce(quorum, 1)
    consumer = quorum.consumer(0)
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
