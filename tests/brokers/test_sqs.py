"""SQS on ElasticMQ: what the contract test does not cover. The redrive policy, the
visibility timeout, FIFO queues, retention by age, and the URLs of the real services."""

import dataclasses
import time

import pytest

from lab import messages
from lab.brokers import adapter_for
from lab.brokers.contract import DeadLetterInfo
from lab.brokers.sqs import queues
from lab.brokers.sqs.adapter import COUNTS
from lab.brokers.sqs.client import endpoint_url, make_client, region
from lab.errors import LabError
from lab.runtimes.external import parse_url
from tests.brokers.helpers import (
    dead_letter_some,
    drain,
    lab_messages,
    new_adapter,
    produce,
    provisioned,
    receive,
    wait_depth,
)

pytestmark = pytest.mark.brokers


@pytest.fixture
def sqs(session_lab, request):
    recipe = getattr(request, "param", {})
    with provisioned(new_adapter(session_lab, "sqs", recipe, "sqs-test")) as adapter:
        yield adapter


def seq_of(delivery) -> int:
    return messages.decode(delivery.payload).seq


@pytest.mark.parametrize("sqs", [{"max_attempts": 2}], indirect=True)
def test_the_redrive_policy_moves_a_poison_message(sqs):
    """Received max_attempts times and given up on: the queue itself moves it to the DLQ
    on its next receive, and the listing says so, with the attempts SQS counted."""
    produce(sqs, 3)
    consumer = sqs.consumer(0)
    try:
        attempts = []
        for _ in range(2):
            batch = receive(consumer, 3 if not attempts else 1)
            poison = [d for d in batch if seq_of(d) == 1]
            consumer.ack([d for d in batch if seq_of(d) != 1])
            attempts.append(poison[0].attempts)
            if len(attempts) < 2:
                consumer.reject(poison)
        assert attempts == [1, 2], "ApproximateReceiveCount is the attempt"
        info = DeadLetterInfo("poison: processing failed", 2, time.time(), time.time())
        consumer.dead_letter([(poison[0], info)])
        assert consumer.receive(10, 1) == [], "its next receive moved it, delivered nothing"
    finally:
        consumer.close()
    assert wait_depth(sqs, 0) == 0
    [letter] = sqs.dead_letters(10)
    assert (letter.seq, letter.attempts) == (1, 2)
    assert letter.reason == "redrive policy (maxReceiveCount 2)"
    assert sqs.probe(final=True).dead_letters == 1
    assert sqs.redrive() == 1
    consumer = sqs.consumer(1)
    try:
        [again] = receive(consumer, 1)
        assert (seq_of(again), again.attempts) == (1, 1), "attempts start again"
        consumer.ack([again])
    finally:
        consumer.close()


@pytest.mark.parametrize("sqs", [{"sqs": {"visibility_timeout": 1}}], indirect=True)
def test_a_crashed_consumers_messages_come_back_after_the_visibility_timeout(sqs):
    produce(sqs, 5)
    quitter = sqs.consumer(0)
    held = receive(quitter, 5)
    quitter.close()  # gone without a word, as a killed consumer is
    survivor = sqs.consumer(1)
    try:
        assert survivor.receive(5, 0) == [], "invisible while the timeout runs"
        started = time.monotonic()
        again = receive(survivor, 5, timeout=10)
        survivor.ack(again)
    finally:
        survivor.close()
    assert sorted(map(seq_of, held)) == sorted(map(seq_of, again)) == list(range(5))
    assert all(d.attempts == 2 for d in again)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("sqs", [{"sqs": {"queue_type": "fifo"}}], indirect=True)
def test_fifo_keeps_each_producers_order_and_stores_a_repeat_once(sqs):
    assert queues.main_queue(sqs.spec).endswith(".fifo")
    produce(sqs, 30, producer_id=0)
    produce(sqs, 30, producer_id=1)
    produce(sqs, 10, producer_id=0)  # the same ids again: SQS's deduplication drops them
    assert wait_depth(sqs, 60) == 60
    consumer = sqs.consumer(0)
    try:
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 60 and time.monotonic() < deadline:
            batch = consumer.receive(10, 1)
            got += [messages.decode(d.payload) for d in batch]
            consumer.ack(batch)
    finally:
        consumer.close()
    for producer in (0, 1):
        assert [h.seq for h in got if h.producer == producer] == list(range(30))
    assert "MessageDeduplicationId" in sqs.settings()["queue"]


@pytest.mark.parametrize(
    "sqs", [{"sqs": {"queue_type": "fifo", "message_group": "key"}, "partitions": 3}], indirect=True
)
def test_fifo_dead_letters_browse_and_redrive(sqs):
    produce(sqs, 9)
    info = DeadLetterInfo("poison: processing failed", 1, 1000.0, 1001.0)
    dead_letter_some(sqs, 9, [0, 4, 8], info)
    assert wait_depth(sqs, 0) == 0
    letters = sqs.dead_letters(10)
    assert sorted(d.seq for d in letters) == [0, 4, 8]
    assert {(d.attempts, d.first_failure, d.last_failure) for d in letters} == {(1, 1000.0, 1001.0)}
    assert sqs.redrive() == 3
    consumer = sqs.consumer(1)
    try:
        assert sorted(drain(consumer, 3)) == [0, 4, 8]
    finally:
        consumer.close()
    assert "one per key (seq mod 3)" in sqs.settings()["queue"]


@pytest.mark.parametrize("sqs", [{"retention": {"max_age": "10s"}}], indirect=True)
def test_retention_is_sqs_minimum_period_which_elasticmq_does_not_apply(sqs):
    """MessageRetentionPeriod cannot be under 60 s; ElasticMQ accepts it, keeps none, and
    then no message may be counted as deleted by retention."""
    acks = produce(sqs, 20)
    assert all(a.position > 0 for a in acks), "acks carry the server's clock"
    assert sqs.period == 60 and sqs.period_kept is False
    probe = sqs.probe(final=True)
    assert probe.depth == 20 and probe.retention_floor == {} and probe.retention_dropped is None
    retention = sqs.settings()["retention"]
    assert "MessageRetentionPeriod = 60 s (max_age 10 s raised to SQS's minimum of 60 s)" in (
        retention
    )
    assert "deletes nothing by age" in retention


def test_kept_dead_letters_are_read_by_a_later_adapter(session_lab):
    adapter = new_adapter(session_lab, "sqs", {}, "keep")
    adapter.provision()
    produce(adapter, 2)
    dead_letter_some(adapter, 2, [1], DeadLetterInfo("test", 1, 1.0, 1.0))
    adapter.teardown(keep_dead_letters=True)
    adapter.close()
    again = adapter_for(adapter.spec)  # as `lab dlq` does, from another process
    try:
        assert [d.seq for d in again.dead_letters(10)] == [1]
        assert again.probe(final=True).dead_letters == 1
    finally:
        again.teardown()
        again.close()
    gone = adapter_for(adapter.spec)
    try:
        assert gone.dead_letters(10) == [] and gone.probe().depth is None
    finally:
        gone.close()


def test_queue_names_are_ones_sqs_takes(session_lab):
    adapter = new_adapter(session_lab, "sqs", {"name": "a name with spaces " * 6}, "long")
    adapter.spec = type(adapter.spec)(
        "20261202-030249-" + "x" * 90 + "-199d", "sqs", adapter.spec.endpoint, adapter.spec.recipe
    )
    names = {queues.main_queue(adapter.spec), queues.dead_letter_queue(adapter.spec)}
    assert all(len(n) <= 80 and n.replace("-", "").replace("_", "").isalnum() for n in names)
    with provisioned(adapter):
        produce(adapter, 1)
        assert wait_depth(adapter, 1) == 1


@pytest.mark.parametrize(
    "sqs", [{"pattern": "pub-sub", "subscribers": {"count": 2, "slow": 1}}], indirect=True
)
def test_pub_sub_fills_a_queue_per_subscriber_and_probes_each(sqs):
    """No SNS: the producer's batch goes to every subscriber's queue; each subscriber's
    consumer reads its own, and the probe gives each one's depth."""
    subs = sqs.spec.subscribers
    assert subs == ("sub-1", "slow-1")
    produce(sqs, 25)
    probe = sqs.probe(final=True)
    assert probe.subscriber_depths == {"sub-1": 25, "slow-1": 25} and probe.depth == 50
    spec = dataclasses.replace(sqs.spec, subscriber="sub-1")
    consumer = adapter_for(spec).consumer(0)
    try:
        assert sorted(drain(consumer, 25)) == list(range(25))
    finally:
        consumer.close()
    deadline = time.monotonic() + 10
    while sqs.probe(final=True).subscriber_depths["sub-1"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sqs.probe(final=True).subscriber_depths == {"sub-1": 0, "slow-1": 25}
    assert "SNS is not emulated" in sqs.settings()["fan_out"]


def wait_empty(adapter, name: str, timeout: float = 10.0) -> bool:
    """The queue holds nothing, visible or received (not yet deleted)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = adapter._counts(name)["Attributes"]
        if not any(int(counts.get(n, 0)) for n in COUNTS):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


@pytest.mark.parametrize(
    "sqs", [{"pattern": "request-reply", "producers": {"count": 2}}], indirect=True
)
def test_replies_reach_their_requesters_queue_and_are_deleted_once_read(sqs):
    header = messages.HEADER_SIZE
    requests = {r: lab_messages(sqs.spec, 12, producer=r) for r in (0, 1)}
    replier = sqs.replier(0)
    receivers = {r: sqs.replies(r) for r in (0, 1)}
    try:
        replier.send([(r, m.payload[:header]) for r in (1, 0) for m in requests[r]])
        for r, receiver in receivers.items():
            got: list[bytes] = []
            deadline = time.monotonic() + 10
            while len(got) < 12 and time.monotonic() < deadline:
                got += receiver.receive(0.5)
            assert sorted(messages.decode(g).seq for g in got) == list(range(12))
            assert {messages.decode(g).producer for g in got} == {r}
            assert wait_empty(sqs, queues.reply_queue(sqs.spec, r)), "deleted once read"
    finally:
        replier.close()
        for receiver in receivers.values():
            receiver.close()
    assert "WaitTimeSeconds" in sqs.settings()["replies"]


@pytest.mark.parametrize(
    ("recipe", "made"),
    [
        ({"pattern": "pub-sub", "subscribers": {"count": 3}}, 6),  # a queue and DLQ each
        ({"pattern": "request-reply", "producers": {"count": 3}}, 5),  # + a reply queue each
    ],
)
def test_teardown_deletes_every_queue_of_the_pattern(session_lab, recipe, made):
    adapter = new_adapter(session_lab, "sqs", recipe, "gone")
    adapter.provision()
    listed = adapter.client.list_queues(QueueNamePrefix=adapter.spec.queue)
    assert len(listed.get("QueueUrls", [])) == made
    adapter.teardown()
    try:
        assert adapter.client.list_queues(QueueNamePrefix=adapter.spec.queue).get("QueueUrls") in (
            None,
            [],
        )
    finally:
        adapter.close()


# --- URLs of the real services (no connection is made) ------------------------------------


@pytest.mark.parametrize(
    ("url", "endpoint", "where"),
    [
        (
            "sqs+https://sqs.eu-west-1.amazonaws.com",
            "https://sqs.eu-west-1.amazonaws.com",
            "eu-west-1",
        ),
        (
            "sqs+https://message-queue.api.cloud.yandex.net",
            "https://message-queue.api.cloud.yandex.net",
            "ru-central1",
        ),
        ("sqs://127.0.0.1:9324", "http://127.0.0.1:9324", "us-east-1"),
        ("sqs+https://sqs.internal:8443", "https://sqs.internal:8443", "us-east-1"),
    ],
)
def test_service_urls(url, endpoint, where, monkeypatch):
    import boto3

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    ep = parse_url(url)
    assert ep.broker == "sqs" and endpoint_url(ep) == endpoint
    assert region(ep, boto3.Session()) == where
    monkeypatch.setenv("AWS_REGION", "ap-south-2")
    assert region(ep, boto3.Session()) == "ap-south-2", "the AWS variables come first"
    assert make_client(ep).meta.endpoint_url == endpoint


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("sqs://KEY:s3cr3t-pw@sqs.eu-west-1.amazonaws.com", "carries credentials"),
        ("sqs+https://sqs.eu-west-1.amazonaws.com/123/queue", "has a path"),
        ("sqs://sqs.eu-west-1.amazonaws.com", "is plain http on port 443"),
    ],
)
def test_bad_service_urls_say_why_without_the_secret(url, why):
    with pytest.raises(LabError) as caught:
        parse_url(url)
    assert why in str(caught.value) and "s3cr3t-pw" not in str(caught.value)
