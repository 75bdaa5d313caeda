"""The producer (SendMessageBatch; in pub-sub to every subscriber's queue) and the consumer
(long-polled ReceiveMessage, DeleteMessageBatch, visibility 0 to reject) of a run's queue."""

import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from botocore.client import BaseClient

from lab.brokers.contract import (
    Ack,
    BrokerError,
    ConsumerClient,
    DeadLetterInfo,
    Delivery,
    Outgoing,
    ProducerClient,
    RunSpec,
)
from lab.brokers.sqs import dlq as sqs_dlq
from lab.brokers.sqs import queues
from lab.brokers.sqs.client import ERRORS, broker_error, make_client

LONG_POLL_MAX = 20  # SQS's longest WaitTimeSeconds
RECEIVE_ATTRIBUTES = ["ApproximateReceiveCount", "MessageGroupId"]
PARALLEL_CALLS = 4  # a consumer's batch calls in flight at once


def queue_url(client: BaseClient, name: str) -> str:
    try:
        return client.get_queue_url(QueueName=name)["QueueUrl"]
    except ERRORS as exc:
        raise broker_error(f"GetQueueUrl {name}", exc) from exc


def has_retention(spec: RunSpec) -> bool:
    r = spec.recipe.retention
    return bool(r.max_age or r.max_messages or r.max_bytes)


class SqsProducer(ProducerClient):
    """Batches of up to 10, each sent once 10 are waiting or the oldest has waited
    `linger`. A failed call fails its batch and everything still waiting, as acks with
    ok=False, and the next send raises: the worker then backs off and reconnects.

    Pub-sub: each batch goes to every subscriber's queue at once, a thread each, as SNS
    fans out in parallel (ElasticMQ serves each queue on its own), and a message is acked
    only when every queue took it (one that some queues took and others did not is
    failed, and the subscribers that got it count it as unacked). Request-reply: no
    linger, a request waited on goes at once."""

    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        self.spec = spec
        self.producer = producer_id
        self.fifo = queues.is_fifo(spec)
        self.linger_ns = 0 if spec.recipe.request_reply else int(spec.options.linger * 1e9)
        # Acks carry the server's clock, so that a retention by age can be told apart
        # from the rest (the position is read only by runs with retention).
        self.positions = has_retention(spec)
        fan_out = len(spec.subscribers)
        self.client = make_client(spec.endpoint, connections=max(2, fan_out))
        self.urls = [queue_url(self.client, queues.main_queue(spec, s)) for s in spec.subscribers]
        self.pool = ThreadPoolExecutor(fan_out, "sqs-fan-out") if fan_out > 1 else None
        self._pending: list[Outgoing] = []
        self._oldest_ns = 0
        self._acks: list[Ack] = []
        self._broken: BrokerError | None = None

    def send(self, batch: list[Outgoing]) -> None:
        if self._broken is not None:
            raise self._broken
        if batch and not self._pending:
            self._oldest_ns = time.monotonic_ns()
        self._pending += batch
        while len(self._pending) >= queues.BATCH and self._broken is None:
            self._send(queues.BATCH)
        if not self.linger_ns:
            self._send_all()

    def poll(self, timeout: float) -> list[Ack]:
        if self._pending and self._broken is None:
            wait_ns = self._oldest_ns + self.linger_ns - time.monotonic_ns()
            if wait_ns > 0 and timeout > 0:
                time.sleep(min(timeout, wait_ns / 1e9))
            if self._oldest_ns + self.linger_ns <= time.monotonic_ns():
                self._send_all()
        elif not self._acks and timeout > 0 and self._broken is None:
            time.sleep(timeout)
        acks, self._acks = self._acks, []
        if not acks and self._broken is not None:
            raise self._broken
        return acks

    def flush(self, timeout: float) -> list[Ack]:
        if self._broken is None:
            self._send_all()
        acks, self._acks = self._acks, []
        return acks

    def _send_all(self) -> None:
        while self._pending and self._broken is None:
            self._send(min(queues.BATCH, len(self._pending)))

    def _send(self, count: int) -> None:
        batch, self._pending = self._pending[:count], self._pending[count:]
        self._oldest_ns = time.monotonic_ns()
        entries = []
        for i, msg in enumerate(batch):
            entry = {"Id": str(i), "MessageBody": queues.body(msg.payload)}
            if self.fifo:
                entry["MessageGroupId"] = queues.group_id(self.spec, self.producer, msg.seq)
                # The message's identity: a send repeated within SQS's five-minute window
                # is stored once.
                entry["MessageDeduplicationId"] = f"{self.producer}-{msg.seq}"
            entries.append(entry)
        failed: dict[str, str] = {}
        try:
            replies = self._send_everywhere(entries)
            for reply in replies:
                for f in reply.get("Failed", []):
                    failed.setdefault(f["Id"], f"{f.get('Code')}: {f.get('Message')}")
        except ERRORS as exc:
            self._broken = broker_error("SendMessageBatch", exc)
            lost = batch + self._pending
            self._pending = []
            self._acks += [Ack(m.seq, m.intended_ns, False, str(self._broken)) for m in lost]
            return
        # The Date header is whole seconds: a message was stored before the next one.
        now = queues.server_ms(replies[-1])
        position = now + 1000 if self.positions and now is not None else -1
        for i, msg in enumerate(batch):
            error = failed.get(str(i))
            if error is None:
                self._acks.append(Ack(msg.seq, msg.intended_ns, True, None, 0, position))
            else:
                self._acks.append(Ack(msg.seq, msg.intended_ns, False, f"sqs: {error}"))

    def _send_everywhere(self, entries: list[dict]) -> list[dict]:
        """SendMessageBatch to each queue; the first failure raises."""
        if self.pool is None:
            return [self.client.send_message_batch(QueueUrl=self.urls[0], Entries=entries)]
        calls = [
            self.pool.submit(self.client.send_message_batch, QueueUrl=url, Entries=entries)
            for url in self.urls
        ]
        return [call.result() for call in calls]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        self.client.close()


class Handle(NamedTuple):
    receipt: str
    message_id: str
    group: str | None  # FIFO: the message group, which a copy in the DLQ keeps


class SqsConsumer(ConsumerClient):
    """Batch calls of ten, PARALLEL_CALLS of them at once: one after another, a batch of
    100 took 20 round trips (ten receives, ten deletes), and at ElasticMQ's 20-30 ms a call
    on a busy machine (the real service's from outside its region) that capped a consumer
    near 250 messages a second."""

    def __init__(self, spec: RunSpec, consumer_id: int) -> None:
        self.spec = spec
        self.max_receives = spec.recipe.max_attempts  # the queue's maxReceiveCount
        self.client = make_client(
            spec.endpoint, read_timeout=LONG_POLL_MAX + 10, connections=PARALLEL_CALLS
        )
        self.pool = ThreadPoolExecutor(PARALLEL_CALLS, "sqs-consumer")
        # Pub-sub: the queue of this consumer's subscriber.
        self.url = queue_url(self.client, queues.main_queue(spec, spec.subscriber))
        self._dlq_url: str | None = None

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        # Long polling in whole seconds, SQS's unit: a wait of 0.1 s becomes 1 s, which
        # returns as soon as a message is there.
        wait = min(LONG_POLL_MAX, math.ceil(timeout)) if timeout > 0 else 0
        first = min(queues.BATCH, max_messages)
        out = self._receive(first, wait)
        # A full answer: more may be waiting. More receives, which do not wait, until one
        # comes back short or the batch is full: one, then two at once, then up to
        # PARALLEL_CALLS. A consumer that keeps up (its first receive takes the
        # producer's last batch of ten) pays one more call, not PARALLEL_CALLS.
        full, calls = len(out) == first, 1
        while full and len(out) < max_messages:
            left = max_messages - len(out)
            wants = [min(queues.BATCH, left - i) for i in range(0, left, queues.BATCH)]
            wants = wants[:calls]
            found = [c.result() for c in [self.pool.submit(self._receive, n, 0) for n in wants]]
            for part in found:
                out += part
            full = all(len(part) == n for part, n in zip(found, wants, strict=True))
            calls = min(PARALLEL_CALLS, calls * 2)
        return out

    def _receive(self, want: int, wait: int) -> list[Delivery]:
        try:
            reply = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=want,
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=RECEIVE_ATTRIBUTES,
            )
        except ERRORS as exc:
            raise broker_error("ReceiveMessage", exc) from exc
        out = []
        for m in reply.get("Messages", []):
            attrs = m.get("Attributes", {})
            handle = Handle(m["ReceiptHandle"], m["MessageId"], attrs.get("MessageGroupId"))
            count = int(attrs.get("ApproximateReceiveCount", 0))
            out.append(Delivery(queues.payload(m["Body"]), handle, count))
        return out

    def _batch(self, call: str, deliveries: list[Delivery], **extra: object) -> None:
        method = getattr(self.client, call)
        calls = []
        for i in range(0, len(deliveries), queues.BATCH):
            chunk = deliveries[i : i + queues.BATCH]
            entries = [
                {"Id": str(j), "ReceiptHandle": d.handle.receipt, **extra}
                for j, d in enumerate(chunk)
            ]
            # Failed entries are receipts that expired (the visibility timeout ran out
            # and the message went to another consumer): SQS will deliver it again, and
            # the ledger counts the duplicate.
            calls.append(self.pool.submit(method, QueueUrl=self.url, Entries=entries))
        try:
            for done in calls:
                done.result()
        except ERRORS as exc:
            raise broker_error(call, exc) from exc

    def ack(self, deliveries: list[Delivery]) -> None:
        self._batch("delete_message_batch", deliveries)

    def reject(self, deliveries: list[Delivery]) -> None:
        # Visible again at once; its next receive counts one more attempt.
        self._batch("change_message_visibility_batch", deliveries, VisibilityTimeout=0)

    def dead_letter(self, letters: list[tuple[Delivery, DeadLetterInfo]]) -> None:
        """Messages received maxReceiveCount times go back to the queue at once, and the
        queue's redrive policy moves them to the DLQ on their next receive (SQS's own
        way). One given up on earlier is copied there with its info, then deleted."""
        ripe = [d for d, _ in letters if d.attempts >= self.max_receives]
        early = [(d, info) for d, info in letters if d.attempts < self.max_receives]
        if ripe:
            self.reject(ripe)
        if early:
            if self._dlq_url is None:
                self._dlq_url = queue_url(
                    self.client, queues.dead_letter_queue(self.spec, self.spec.subscriber)
                )
            stored = sqs_dlq.copy_to_dlq(self.client, self._dlq_url, self.spec, early)
            self.ack(stored)
            if len(stored) < len(early):
                raise BrokerError(f"sqs: {len(early) - len(stored)} dead letters not stored")

    def close(self) -> None:
        self.pool.shutdown()
        self.client.close()
