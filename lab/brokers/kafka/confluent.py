"""The confluent-kafka (librdkafka) producer and consumer: the default Kafka clients."""

import threading
import time
from collections.abc import Iterable
from functools import partial

import confluent_kafka
from confluent_kafka import (
    KafkaError,
    KafkaException,
    TopicPartition,
)

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
    CONNECT_TIMEOUT,
    HEARTBEAT_MS,
    MAX_BLOCK_S,
    SESSION_TIMEOUT_MS,
    OffsetTracker,
    bootstrap,
    close_producer,
    max_poll_interval_ms,
    producer_config,
    reason,
)


class ConfluentProducer(ProducerClient):
    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        self._topic = spec.queue
        self._acks: list[Ack] = []  # filled by delivery callbacks, inside poll and flush
        self._producer = confluent_kafka.Producer(
            producer_config(spec, f"{spec.queue}-producer-{producer_id}")
        )
        try:
            # librdkafka connects in the background; fetch the topic's metadata now so the
            # producer is connected, and knows its partition leaders, before saying ready.
            self._producer.list_topics(self._topic, timeout=CONNECT_TIMEOUT)
        except KafkaException as e:
            raise BrokerError(f"kafka: cannot connect the producer: {reason(e)}") from e

    def _delivered(
        self, seq: int, intended_ns: int, err: KafkaError | None, msg: confluent_kafka.Message
    ) -> None:
        if err is None:
            self._acks.append(Ack(seq, intended_ns, True, None, msg.partition(), msg.offset()))
        else:
            self._acks.append(Ack(seq, intended_ns, False, f"{err.name()}: {err.str()}"))

    def send(self, batch: list[Outgoing]) -> None:
        produce, poll, topic, delivered = (
            self._producer.produce,
            self._producer.poll,
            self._topic,
            self._delivered,
        )
        try:
            for seq, intended_ns, payload in batch:
                # No key: librdkafka's sticky partitioner fills one batch at a time.
                callback = partial(delivered, seq, intended_ns)
                try:
                    produce(topic, payload, on_delivery=callback)
                except BufferError:
                    self._wait_for_room(topic, payload, callback)
            poll(0)
        except KafkaException as e:
            raise BrokerError(f"kafka produce: {reason(e)}") from e

    def _wait_for_room(self, topic: str, payload: bytes, callback: partial) -> None:
        """The local queue is full: serve delivery reports, which frees it, and retry."""
        deadline = time.monotonic() + MAX_BLOCK_S
        while time.monotonic() < deadline:
            self._producer.poll(0.05)
            try:
                self._producer.produce(topic, payload, on_delivery=callback)
                return
            except BufferError:
                pass
        raise BrokerError(f"kafka: the producer's queue stayed full for {MAX_BLOCK_S:g} s")

    def _take(self) -> list[Ack]:
        acks, self._acks = self._acks, []
        return acks

    def poll(self, timeout: float) -> list[Ack]:
        # librdkafka waits in whole milliseconds: below 1 ms a wait would become no wait.
        self._producer.poll(max(timeout, 0.001) if timeout > 0 else 0)
        return self._take()

    def flush(self, timeout: float) -> list[Ack]:
        self._producer.flush(timeout)
        return self._take()

    def close(self) -> None:
        close_producer(self._producer)


class ConfluentConsumer(kafka_dlq.RetryingConsumer):
    def __init__(self, spec: RunSpec, consumer_id: int) -> None:
        self._spec = spec
        self._topic = spec.queue
        self._client_id = f"{spec.queue}-consumer-{consumer_id}"
        self._offsets = OffsetTracker()
        self._closed = False
        # Made on the first reject or dead letter: most consumers never need one.
        self._producer: confluent_kafka.Producer | None = None
        self._consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": bootstrap(spec.endpoint),
                "client.id": self._client_id,
                "group.id": spec.group,
                "enable.auto.commit": False,
                # Also where retention deleted the next record: go on from the oldest kept.
                "auto.offset.reset": "earliest",
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": HEARTBEAT_MS,
                "max.poll.interval.ms": max_poll_interval_ms(spec.recipe),
                "logger": CLIENT_LOG,
                "log.connection.close": False,
            }
        )
        self._consumer.subscribe(
            [self._topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    # Rebalance callbacks run inside consume() and close().
    def _on_assign(self, _consumer: object, partitions: list[TopicPartition]) -> None:
        self._offsets.assigned(tp.partition for tp in partitions)

    def _on_revoke(self, _consumer: object, partitions: list[TopicPartition]) -> None:
        self._commit(self._offsets.revoked(tp.partition for tp in partitions), wait=True)

    def _on_lost(self, _consumer: object, partitions: list[TopicPartition]) -> None:
        self._offsets.lost(tp.partition for tp in partitions)

    def _commit(self, points: dict[int, int], wait: bool) -> None:
        if not points:
            return
        offsets = [TopicPartition(self._topic, n, off) for n, off in points.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=not wait)
        except KafkaException as e:
            # A commit that fails (the group is rebalancing, the member was evicted) means
            # these messages are delivered again: at-least-once, which the ledger counts.
            CLIENT_LOG.info("kafka commit failed: %s", reason(e))

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        consume, delivered = self._consumer.consume, self._offsets.delivered
        deadline = time.monotonic() + timeout
        # Acks that came last before an idle spell are committed here, one interval late.
        self._commit(self._offsets.due(deadline - timeout), wait=False)
        out: list[Delivery] = []
        try:
            while True:
                # consume(n, t) waits for all n messages or all of t, whichever comes
                # first: wait for one, then take what has already arrived.
                msgs = consume(1, max(0.0, deadline - time.monotonic()))
                if msgs and max_messages > 1:
                    msgs += consume(max_messages - 1, 0)
                for m in msgs:
                    err = m.error()
                    if err is not None:
                        if err.fatal():
                            raise BrokerError(f"kafka consume: {err.str()}")
                        # Partition EOF, transient errors, an offset reset past records
                        # retention deleted: librdkafka recovers by itself.
                        continue
                    handle = delivered(m.partition(), m.offset())
                    if handle is None:
                        continue
                    headers = m.headers()
                    if headers is None:
                        out.append(Delivery(m.value(), handle, 1))
                    else:
                        attempts, first = kafka_dlq.attempts_of(headers)
                        out.append(
                            Delivery(m.value(), handle._replace(first_failure=first), attempts)
                        )
                if out or time.monotonic() >= deadline:
                    return out
        except KafkaException as e:
            raise BrokerError(f"kafka consume: {reason(e)}") from e

    def ack(self, deliveries: list[Delivery]) -> None:
        self._offsets.acked(deliveries)
        self._commit(self._offsets.due(time.monotonic()), wait=False)

    def _owns(self, delivery: Delivery) -> bool:
        return self._offsets.owns(delivery)

    def _publish(self, records: Iterable[kafka_dlq.Record]) -> None:
        if self._producer is None:
            config = producer_config(self._spec, f"{self._client_id}-retries")
            self._producer = confluent_kafka.Producer(config)
        try:
            kafka_dlq.publish(self._producer, records, MAX_BLOCK_S)
        except KafkaException as e:
            raise BrokerError(f"kafka produce: {reason(e)}") from e

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._producer is not None:
            close_producer(self._producer)
        # close() waits for outstanding commits, this last one included, before it leaves
        # the group. With no coordinator to answer it would wait forever: bound the wait
        # and abandon the handle, whose partitions the group reassigns after the session.
        self._commit(self._offsets.final(), wait=False)
        closing = threading.Thread(target=self._close, name="kafka-consumer-close", daemon=True)
        closing.start()
        closing.join(CLOSE_TIMEOUT)
        if closing.is_alive():
            CLIENT_LOG.info("kafka consumer close abandoned after %g s", CLOSE_TIMEOUT)

    def _close(self) -> None:
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as e:
            CLIENT_LOG.info("kafka consumer close: %s", e)
