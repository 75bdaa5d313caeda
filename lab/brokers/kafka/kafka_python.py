"""kafka-python clients for the Kafka adapter: the recipe's `kafka.client = "kafka-python"`.

They behave like ConfluentProducer and ConfluentConsumer in kafka.py, with the same settings,
the same OffsetTracker and the same retry and dead-letter headers (kafka_dlq.py). The
differences are the client's own: the producer's network I/O runs in a sender thread, so
delivery callbacks arrive on that thread (they go through a deque, safe without a lock),
and the consumer does all its group work inside poll(), offset resets included (where
retention deleted its next record, auto_offset_reset="earliest" moves it on).
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from contextlib import suppress
from functools import partial

# Submodules, not `from kafka import ...`: ruff would take `kafka` for the repo's kafka/ dir.
from kafka.consumer import KafkaConsumer
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.partitioner import StickyPartitioner
from kafka.producer import KafkaProducer
from kafka.producer.future import RecordMetadata
from kafka.structs import OffsetAndMetadata, TopicPartition

from lab.brokers.contract import (
    Ack,
    BrokerError,
    Delivery,
    Outgoing,
    ProducerClient,
    RunSpec,
)
from lab.brokers.kafka import dlq as kafka_dlq
from lab.brokers.kafka.common import (
    CLIENT_LOG,
    CLOSE_TIMEOUT,
    DELIVERY_TIMEOUT_MS,
    HEARTBEAT_MS,
    LINGER_MS,
    MAX_BLOCK_S,
    SESSION_TIMEOUT_MS,
    OffsetTracker,
    bootstrap,
    durability,
    max_poll_interval_ms,
)

CLOSE_TIMEOUT_MS = int(CLOSE_TIMEOUT * 1000)

# kafka-python logs each rebalance at WARNING ("No partition metadata for topic ..." while
# a group forms); the adapter raises BrokerError where something is really wrong.
logging.getLogger("kafka").setLevel(logging.ERROR)


def new_producer(spec: RunSpec, client_id: str) -> KafkaProducer:
    """A producer with the recipe's durability and the lab's timeouts."""
    acks, idempotence = durability(spec.recipe)
    try:
        return KafkaProducer(
            bootstrap_servers=bootstrap(spec.endpoint),
            client_id=client_id,
            acks="all" if acks == "all" else int(acks),
            enable_idempotence=idempotence,
            linger_ms=LINGER_MS,
            delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
            max_block_ms=int(MAX_BLOCK_S * 1000),
            # Null keys stick to one partition per batch, as librdkafka does; the
            # default partitioner picks a random partition for every message.
            partitioner=StickyPartitioner(),
            allow_auto_create_topics=False,
            metrics_enabled=False,  # per-message sensors cost more than the send
        )
    except KafkaError as e:
        raise BrokerError(f"kafka-python producer: {e}") from e


def close_producer(producer: KafkaProducer) -> None:
    # Drop what is still unsent, as ConfluentProducer.close() does. kafka-python has no
    # purge, and its close() raises while messages are pending, before it stops the
    # sender thread: force_close() fails them first, so close() can finish.
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()
    with suppress(KafkaError):
        producer.close(timeout=CLOSE_TIMEOUT)


class KafkaPythonProducer(ProducerClient):
    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        self._topic = spec.queue
        self._acks: deque[Ack] = deque()
        self._arrived = threading.Event()
        self._producer = new_producer(spec, f"{spec.queue}-producer-{producer_id}")

    def _done(self, seq: int, intended_ns: int, result: RecordMetadata | BaseException) -> None:
        """Callback and errback alike: on the sender thread, once per message."""
        if isinstance(result, BaseException):
            self._acks.append(Ack(seq, intended_ns, False, f"{type(result).__name__}: {result}"))
        else:
            self._acks.append(Ack(seq, intended_ns, True, None, result.partition, result.offset))
        if not self._arrived.is_set():
            self._arrived.set()

    def send(self, batch: list[Outgoing]) -> None:
        send, topic, done = self._producer.send, self._topic, self._done
        try:
            for seq, intended_ns, payload in batch:
                # send() blocks while the accumulator is full: that is the backpressure.
                future = send(topic, payload)
                callback = partial(done, seq, intended_ns)
                future.add_callback(callback)
                future.add_errback(callback)
        except KafkaError as e:
            raise BrokerError(f"kafka-python send: {e}") from e

    def _take(self) -> list[Ack]:
        acks = self._acks
        return [acks.popleft() for _ in range(len(acks))]

    def poll(self, timeout: float) -> list[Ack]:
        if not self._acks and timeout > 0:
            self._arrived.wait(timeout)
        # Cleared before taking: an ack arriving in between sets it again, none is missed.
        self._arrived.clear()
        return self._take()

    def flush(self, timeout: float) -> list[Ack]:
        # What arrived in time is returned; the rest is still in flight.
        with suppress(KafkaTimeoutError):
            self._producer.flush(timeout)
        return self._take()

    def close(self) -> None:
        close_producer(self._producer)


class _Rebalance(AsyncConsumerRebalanceListener):
    """Runs on kafka-python's I/O loop, where blocking calls are refused: commits are
    awaited, not waited for."""

    def __init__(self, consumer: "KafkaPythonConsumer") -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        c = self._consumer
        offsets = c._offsets_for(c._tracker.revoked(tp.partition for tp in revoked))
        if offsets:
            try:
                await c._consumer.commit_async(offsets)
            except KafkaError as e:
                CLIENT_LOG.info("kafka-python commit on revoke failed: %s", e)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._consumer._tracker.assigned(tp.partition for tp in assigned)

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        # Evicted from the group: a commit would be refused, the new owners re-read.
        self._consumer._tracker.lost(tp.partition for tp in lost)


class KafkaPythonConsumer(kafka_dlq.RetryingConsumer):
    def __init__(self, spec: RunSpec, consumer_id: int) -> None:
        self._spec = spec
        self._topic = spec.queue
        self._client_id = f"{spec.queue}-consumer-{consumer_id}"
        self._tracker = OffsetTracker()
        # Made on the first reject or dead letter: most consumers never need one.
        self._producer: KafkaProducer | None = None
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap(spec.endpoint),
                client_id=self._client_id,
                group_id=spec.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=HEARTBEAT_MS,
                max_poll_interval_ms=max_poll_interval_ms(spec.recipe),
                allow_auto_create_topics=False,
                metrics_enabled=False,
            )
        except KafkaError as e:
            raise BrokerError(f"kafka-python consumer: {e}") from e
        self._consumer.subscribe(topics=[self._topic], listener=_Rebalance(self))

    def _offsets_for(self, points: dict[int, int]) -> dict[TopicPartition, OffsetAndMetadata]:
        return {
            TopicPartition(self._topic, n): OffsetAndMetadata(off, "", -1)
            for n, off in points.items()
        }

    def _commit(self, points: dict[int, int], wait: bool) -> None:
        if not points:
            return
        offsets = self._offsets_for(points)
        try:
            if wait:
                self._consumer.commit(offsets, timeout_ms=CLOSE_TIMEOUT_MS)
            else:
                self._consumer.commit_async(offsets)
        except KafkaError as e:
            # As in ConfluentConsumer: a failed commit means redelivery, not loss.
            CLIENT_LOG.info("kafka-python commit failed: %s", e)

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        # Acks that came last before an idle spell are committed here, one interval late.
        self._commit(self._tracker.due(time.monotonic()), wait=False)
        try:
            # poll() returns as soon as it has records; the first one also joins the group.
            records = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_messages)
        except KafkaError as e:
            raise BrokerError(f"kafka-python poll: {e}") from e
        delivered = self._tracker.delivered
        out = []
        for batch in records.values():
            for r in batch:
                handle = delivered(r.partition, r.offset)
                if handle is None:
                    continue
                if not r.headers:  # a first delivery (retries carry headers)
                    out.append(Delivery(r.value, handle, 1))
                    continue
                attempts, first = kafka_dlq.attempts_of(r.headers)
                out.append(Delivery(r.value, handle._replace(first_failure=first), attempts))
        return out

    def ack(self, deliveries: list[Delivery]) -> None:
        self._tracker.acked(deliveries)
        self._commit(self._tracker.due(time.monotonic()), wait=False)

    def _owns(self, delivery: Delivery) -> bool:
        return self._tracker.owns(delivery)

    def _publish(self, records: Iterable[kafka_dlq.Record]) -> None:
        if self._producer is None:
            self._producer = new_producer(self._spec, f"{self._client_id}-retries")
        try:
            futures = [
                self._producer.send(
                    topic, value, partition=None if partition < 0 else partition, headers=headers
                )
                for topic, partition, value, headers in records
            ]
            self._producer.flush(MAX_BLOCK_S)
        except KafkaError as e:  # KafkaTimeoutError included
            raise BrokerError(f"kafka-python send: {e}") from e
        failed = [f for f in futures if not f.is_done or f.failed()]
        if failed:
            why = failed[0].exception if failed[0].is_done else "unconfirmed"
            raise BrokerError(f"kafka-python: {len(failed)} records not stored: {why}")

    def close(self) -> None:
        if self._producer is not None:
            close_producer(self._producer)
            self._producer = None
        try:
            self._commit(self._tracker.final(), wait=True)
        finally:
            self._consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)
