"""Kafka: a topic per run, one consumer group, offsets committed after processing.

Two clients do the workload, chosen by the recipe's `kafka.client`: confluent-kafka
(librdkafka) here, and kafka-python in kafka_python.py. Both are configured alike and
share OffsetTracker. Provisioning, probes, teardown and the dead letters' browse and
redrive always use confluent-kafka (an AdminClient, and consumers that only read offsets
or read by assign()), so two runs differ only where the workload runs.

Kafka keeps one committed offset per partition, not an ack per message. OffsetTracker
folds the workers' per-message acks into that offset, and never lets it pass a message
still being processed: a consumer that dies loses nothing, though it may deliver some
messages twice (that is Kafka's at-least-once, and the ledger shows it). A reject
re-publishes the message to the end of its partition and then acks it; retention, those
retries and the `<topic>.dlq` dead letters are in kafka_dlq.py.
"""

import logging
import threading
import time
from collections.abc import Iterable
from functools import partial
from typing import NamedTuple

import confluent_kafka
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from lab.brokers import kafka_dlq
from lab.brokers.base import (
    Ack,
    BrokerAdapter,
    BrokerError,
    ConsumerClient,
    DeadLetterInfo,
    Delivery,
    Outgoing,
    Probe,
    ProducerClient,
    RunSpec,
)
from lab.dlq import DeadLetter
from lab.endpoints import Endpoint
from lab.recipes.model import Recipe

# Both clients log into this logger; the NullHandler keeps their reconnect chatter off
# stderr (Python's last-resort handler) unless the application configures logging.
CLIENT_LOG = logging.getLogger("lab.brokers.kafka.client")
CLIENT_LOG.addHandler(logging.NullHandler())

LINGER_MS = 5  # the same for both profiles, so they differ only in durability
DELIVERY_TIMEOUT_MS = 120_000  # the Java client's default; librdkafka's is 300 s
SESSION_TIMEOUT_MS = 10_000  # a crashed consumer's partitions move on after 10 s, not 45
HEARTBEAT_MS = 1_000  # members hear of a rebalance at their next heartbeat
# How long a producer may stay stuck on a full local queue (or, kafka-python, on missing
# metadata) before send() gives up with BrokerError, and the worker reconnects; and how
# long a consumer's reject or dead_letter waits for the broker to store the copies.
MAX_BLOCK_S = 10.0
CLOSE_TIMEOUT = 5.0
ADMIN_TIMEOUT = 30.0
PROBE_TIMEOUT = 2.0  # a probe runs twice a second: a stalled broker must not hold the engine
FINAL_PROBE_TIMEOUT = 10.0
FLUSH_NOTE = "page cache (Kafka's default; one replica here)"


def bootstrap(ep: Endpoint) -> str:
    return f"[{ep.host}]:{ep.port}" if ":" in ep.host else f"{ep.host}:{ep.port}"


def reason(e: Exception) -> str:
    """What a client exception says, without the KafkaError{code=...} wrapping."""
    err = e.args[0] if e.args else None
    return err.str() if isinstance(err, KafkaError) else str(e)


def durability(recipe: Recipe) -> tuple[str, bool]:
    """(acks, idempotence) of the recipe's durability profile."""
    return ("all", True) if recipe.durability == "safe" else ("1", False)


def max_poll_interval_ms(recipe: Recipe) -> int:
    """How long a consumer may take between receives before the group evicts it.

    A worker may hold `prefetch` messages of `processing_time` each; Kafka's 5 minute
    default would evict a slow but healthy consumer and make the run about that instead.
    """
    held = recipe.consumers.prefetch * recipe.consumers.processing_time
    return min(int(max(300.0, 2 * held) * 1000), 86_400_000)


class _Partition:
    """One assigned partition, as far as this consumer has handed it out."""

    __slots__ = ("acked", "committed", "number", "out")

    def __init__(self, number: int) -> None:
        self.number = number
        self.out: set[int] = set()  # delivered, not acked yet
        self.acked = -1  # one past the highest acked offset
        self.committed = -1

    def commit_point(self) -> int:
        """Every offset below this one is finished; -1 when nothing is."""
        return min(self.acked, *self.out) if self.out else self.acked


class Handle(NamedTuple):
    """A delivery's handle: where it came from, and what a retry or dead letter keeps."""

    part: _Partition
    offset: int
    first_failure: float | None = None  # from x-lab-first-failure, once retried


class OffsetTracker:
    """Per-message acks, folded into the one offset per partition Kafka keeps.

    A rebalance replaces a partition's state, so an ack of a message from a partition
    this consumer no longer owns is ignored: its new owner reads it again from the last
    commit. Rejects are acks too, once the re-published copy is stored.
    """

    def __init__(self) -> None:
        self.partitions: dict[int, _Partition] = {}

    def assigned(self, numbers: Iterable[int]) -> None:
        for n in numbers:
            self.partitions[n] = _Partition(n)

    def revoked(self, numbers: Iterable[int]) -> dict[int, int]:
        """Forget these partitions; returns their commit points, to commit before they go."""
        points = {}
        for n in numbers:
            part = self.partitions.pop(n, None)
            if part is not None and part.commit_point() >= 0:
                points[n] = part.commit_point()
        return points

    def lost(self, numbers: Iterable[int]) -> None:
        for n in numbers:
            self.partitions.pop(n, None)

    def final(self) -> dict[int, int]:
        """Commit points of every partition, forgetting them all (the consumer closes)."""
        return self.revoked(list(self.partitions))

    def delivered(self, number: int, offset: int) -> Handle | None:
        """The handle of a delivery, or None when its partition is no longer ours."""
        part = self.partitions.get(number)
        if part is None:
            return None
        part.out.add(offset)
        return Handle(part, offset)

    def owns(self, delivery: Delivery) -> bool:
        """Whether the delivery's partition is still this consumer's (to settle it)."""
        part = delivery.handle.part
        return self.partitions.get(part.number) is part

    def acked(self, deliveries: list[Delivery]) -> dict[int, int]:
        """New commit points of the partitions these deliveries came from."""
        touched = {}
        for d in deliveries:
            part, offset = d.handle.part, d.handle.offset
            if self.partitions.get(part.number) is part:
                part.out.discard(offset)
                part.acked = max(part.acked, offset + 1)
                touched[part.number] = part
        points = {}
        for n, part in touched.items():
            point = part.commit_point()
            if point > part.committed:
                part.committed = point
                points[n] = point
        return points


def producer_config(spec: RunSpec, client_id: str, endpoint: Endpoint | None = None) -> dict:
    """A confluent producer's settings: the recipe's durability, the lab's timeouts."""
    acks, idempotence = durability(spec.recipe)
    return {
        "bootstrap.servers": bootstrap(endpoint or spec.endpoint),
        "client.id": client_id,
        "acks": acks,
        "enable.idempotence": idempotence,
        "linger.ms": LINGER_MS,
        "delivery.timeout.ms": DELIVERY_TIMEOUT_MS,
        "logger": CLIENT_LOG,
        "log.connection.close": False,
    }


def close_producer(producer: confluent_kafka.Producer) -> None:
    # Producer.close() would flush for up to delivery.timeout; whatever the caller wanted
    # acknowledged it has flushed already, so drop the rest at once.
    producer.purge()
    producer.close()


class ConfluentProducer(ProducerClient):
    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        self._topic = spec.queue
        self._acks: list[Ack] = []  # filled by delivery callbacks, inside poll and flush
        self._producer = confluent_kafka.Producer(
            producer_config(spec, f"{spec.queue}-producer-{producer_id}")
        )

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
        self._producer.poll(timeout)
        return self._take()

    def flush(self, timeout: float) -> list[Ack]:
        self._producer.flush(timeout)
        return self._take()

    def close(self) -> None:
        close_producer(self._producer)


class ConfluentConsumer(ConsumerClient):
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
        self._commit(self._offsets.acked(deliveries), wait=False)

    def reject(self, deliveries: list[Delivery]) -> None:
        """Re-publish each to the end of its partition, attempts counted up, then ack it:
        a retried message comes back behind everything produced meanwhile."""
        # Partitions that moved to another consumer: it reads them again from the last
        # commit, these included, so a copy here would be a second one.
        mine = [d for d in deliveries if self._offsets.owns(d)]
        if not mine:
            return
        now = time.time()
        self._publish(
            (
                self._topic,
                d.handle.part.number,
                d.payload,
                kafka_dlq.retry_headers(d.attempts, d.handle.first_failure, now),
            )
            for d in mine
        )
        self.ack(mine)

    def dead_letter(self, letters: list[tuple[Delivery, DeadLetterInfo]]) -> None:
        mine = [(d, info) for d, info in letters if self._offsets.owns(d)]
        if not mine:
            return
        dlq = self._spec.dead_letter_queue
        self._publish(
            (dlq, 0, d.payload, kafka_dlq.dead_letter_headers(info, d.handle.first_failure))
            for d, info in mine
        )
        self.ack([d for d, _ in mine])

    def _publish(self, records: Iterable[kafka_dlq.Record]) -> None:
        """Store the records; returns only once the broker has them all."""
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


class KafkaAdapter(BrokerAdapter):
    name = "kafka"

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._client = spec.recipe.kafka.client
        self._partitions = [TopicPartition(spec.queue, n) for n in range(spec.recipe.partitions)]
        self._probe_lists: tuple[list[TopicPartition], ...] | None = None
        self._watcher: confluent_kafka.Consumer | None = None

    def _admin(self) -> AdminClient:
        """A new admin client for each provision, teardown and redrive, never kept: after
        a broker restart, librdkafka 2.16's AdminClient fails some requests for good."""
        return AdminClient(
            {
                "bootstrap.servers": bootstrap(self.spec.admin),
                "logger": CLIENT_LOG,
                "log.connection.close": False,
            }
        )

    def _consumer_config(self) -> dict:
        # In the run's group for want of another name, but never subscribed: it never
        # joins, and never commits.
        return {
            "bootstrap.servers": bootstrap(self.spec.admin),
            "group.id": self.spec.group,
            "enable.auto.commit": False,
            "logger": CLIENT_LOG,
            "log.connection.close": False,
        }

    @property
    def watcher(self) -> confluent_kafka.Consumer:
        """The probes' one client, made on first use: a consumer that only reads offsets.
        AdminClient.list_offsets would do too, but keeps failing (FENCED_LEADER_EPOCH)
        once the broker restarted."""
        if self._watcher is None:
            self._watcher = confluent_kafka.Consumer(self._consumer_config())
        # Log lines reach the logger only while the client is polled.
        self._watcher.poll(0)
        return self._watcher

    def _reader(self) -> confluent_kafka.Consumer:
        """A consumer that reads the DLQ by assign(), made for one browse or redrive."""
        return confluent_kafka.Consumer(
            {
                **self._consumer_config(),
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )

    def provision(self) -> None:
        admin = self._admin()
        recipe = self.spec.recipe
        topics = [
            NewTopic(
                self.spec.queue,
                num_partitions=recipe.partitions,
                replication_factor=1,
                config=kafka_dlq.topic_configs(recipe),
            ),
            kafka_dlq.dlq_topic(self.spec),
        ]
        futures = admin.create_topics(topics, request_timeout=ADMIN_TIMEOUT)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as e:
                raise BrokerError(f"creating Kafka topic {name}: {reason(e)}") from e
        self._await_topic(admin, self.spec.queue, recipe.partitions)
        self._await_topic(admin, self.spec.dead_letter_queue, 1)
        self._await_coordinator()

    def _await_coordinator(self) -> None:
        """Until the group's coordinator answers. On a fresh broker it first creates
        __consumer_offsets (NOT_COORDINATOR until then); waiting here spares the first
        consumer seconds of backed-off retries."""
        deadline = time.monotonic() + ADMIN_TIMEOUT
        while True:
            try:
                self.watcher.committed(self._partitions, timeout=5)
                return
            except KafkaException as e:
                if time.monotonic() > deadline:
                    raise BrokerError(f"Kafka group coordinator: {reason(e)}") from e
            time.sleep(0.1)

    def _await_topic(self, admin: AdminClient, topic: str, partitions: int | None) -> None:
        """Until the broker's metadata shows the topic with a leader for every partition
        (partitions=None: no longer shows it): the controller answers before the broker
        has caught up."""
        deadline = time.monotonic() + ADMIN_TIMEOUT
        while time.monotonic() < deadline:
            try:
                topics = admin.list_topics(topic, timeout=5).topics
            except KafkaException:
                topics = None  # not answering yet: try again until the deadline
            else:
                meta = topics.get(topic)
                gone = meta is None or (
                    meta.error is not None and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
                )
                if partitions is None and gone:
                    return
                ready = (
                    meta is not None
                    and meta.error is None
                    and len(meta.partitions) == partitions
                    and all(p.leader >= 0 and p.error is None for p in meta.partitions.values())
                )
                if ready:
                    return
            time.sleep(0.05)
        state = "go away" if partitions is None else "appear"
        raise BrokerError(f"Kafka topic {topic} did not {state} in {ADMIN_TIMEOUT:g}s")

    def probe(self, final: bool = False) -> Probe:
        deadline = time.monotonic() + (FINAL_PROBE_TIMEOUT if final else PROBE_TIMEOUT)

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        watcher = self.watcher
        try:
            partitions, end_of, start_of = self._probe_lists or self._make_probe_lists(left())
            *ends, dlq_end = watcher.offsets_for_times(end_of, timeout=left())
            *starts, dlq_start = watcher.offsets_for_times(start_of, timeout=left())
            done = watcher.committed(partitions, timeout=left())
        except KafkaException as e:
            raise BrokerError(f"Kafka probe: {reason(e)}") from e
        for tp in (*ends, *starts, *done, dlq_end, dlq_start):
            if tp.error is not None:
                where = f"{tp.topic} partition {tp.partition}"
                raise BrokerError(f"Kafka probe: {where}: {tp.error.str()}")
        high = {tp.partition: tp.offset for tp in ends}
        # Log start offsets: what retention deleted from offsets that began at 0.
        low = {tp.partition: tp.offset for tp in starts}
        # Nothing committed yet (a negative offset) counts from the oldest message held.
        committed = {tp.partition: tp.offset for tp in done}
        depth = sum(max(0, high[n] - max(low[n], committed.get(n, -1))) for n in high)
        retained = kafka_dlq.has_retention(self.spec.recipe)
        return Probe(
            depth=depth,
            dead_letters=dlq_end.offset - dlq_start.offset,
            # Records, not messages: retried copies that retention deleted count too.
            retention_dropped=sum(low.values()) if retained else None,
            retention_floor=low if retained else {},
            detail={
                "end_offsets": sum(high.values()),
                "committed": sum(off for off in committed.values() if off >= 0),
            },
        )

    def _make_probe_lists(self, timeout: float) -> tuple[list[TopicPartition], ...]:
        """What probes ask about: the main topic's partitions as the broker has them (an
        adapter that `lab dlq` makes for a running run knows only a default recipe), and
        for offsets_for_times, which takes timestamps -1 and -2 as "the end" and "the
        start", those and the DLQ's one partition, last."""
        topic = self.spec.queue
        meta = self.watcher.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            why = meta.error.str() if meta is not None and meta.error else "no such topic"
            raise BrokerError(f"Kafka probe: {topic}: {why}")
        partitions = [TopicPartition(topic, n) for n in sorted(meta.partitions)]
        both = [*partitions, TopicPartition(self.spec.dead_letter_queue, 0)]
        self._probe_lists = (
            partitions,
            [TopicPartition(tp.topic, tp.partition, OFFSET_END) for tp in both],
            [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in both],
        )
        return self._probe_lists

    def teardown(self, keep_dead_letters: bool = False) -> None:
        # Kept: the group too, whose offsets say what of the main topic was consumed, so
        # that only the redriven messages are new to it.
        if keep_dead_letters:
            return
        admin = self._admin()
        topics = [self.spec.queue, self.spec.dead_letter_queue]
        futures = admin.delete_topics(topics, request_timeout=ADMIN_TIMEOUT)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as e:
                err = e.args[0] if e.args else None
                unknown = KafkaError.UNKNOWN_TOPIC_OR_PART
                if not isinstance(err, KafkaError) or err.code() != unknown:
                    raise BrokerError(f"deleting Kafka topic {name}: {reason(e)}") from e
        for name in topics:
            self._await_topic(admin, name, None)
        groups = admin.delete_consumer_groups([self.spec.group], request_timeout=10)
        try:
            groups[self.spec.group].result()
        except KafkaException as e:
            # No consumer ever joined, or one is still connected: nothing worth failing for.
            CLIENT_LOG.info("kafka group %s not deleted: %s", self.spec.group, reason(e))

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        reader = self._reader()
        try:
            return kafka_dlq.browse(reader, self.spec, limit, ADMIN_TIMEOUT)
        except KafkaException as e:
            raise BrokerError(f"reading Kafka dead letters: {reason(e)}") from e
        finally:
            reader.close()

    def redrive(self) -> int:
        reader = self._reader()
        config = producer_config(self.spec, f"{self.spec.queue}-redrive", self.spec.admin)
        producer = confluent_kafka.Producer(config)
        try:
            return kafka_dlq.redrive(reader, producer, self._admin(), self.spec, ADMIN_TIMEOUT)
        except KafkaException as e:
            raise BrokerError(f"redriving Kafka dead letters: {reason(e)}") from e
        finally:
            close_producer(producer)
            reader.close()

    def settings(self) -> dict[str, str]:
        acks, idempotence = durability(self.spec.recipe)
        return {
            "acks": acks,
            "idempotence": str(idempotence).lower(),
            "linger": f"{LINGER_MS} ms",
            "delivery_timeout": f"{DELIVERY_TIMEOUT_MS // 1000} s",
            "flush": FLUSH_NOTE,
            "replication_factor": "1",
            "partitions": str(self.spec.recipe.partitions),
            "commit": "after processing, per ack (async; sync on rebalance and close)",
            "auto_offset_reset": "earliest (also past records that retention deleted)",
            "session_timeout": f"{SESSION_TIMEOUT_MS // 1000} s",
            **kafka_dlq.settings(self.spec),
            "client": self.client_version(),
        }

    def client_version(self) -> str:
        if self._client == "kafka-python":
            import kafka

            return f"kafka-python {kafka.__version__}"
        # version() is a (string, int) pair in older releases, a string in 2.16.
        return (
            f"confluent-kafka {confluent_kafka.__version__} "
            f"(librdkafka {confluent_kafka.libversion()[0]})"
        )

    def producer(self, producer_id: int) -> ProducerClient:
        if self._client == "kafka-python":
            from lab.brokers.kafka_python import KafkaPythonProducer

            return KafkaPythonProducer(self.spec, producer_id)
        return ConfluentProducer(self.spec, producer_id)

    def consumer(self, consumer_id: int) -> ConsumerClient:
        if self._client == "kafka-python":
            from lab.brokers.kafka_python import KafkaPythonConsumer

            return KafkaPythonConsumer(self.spec, consumer_id)
        return ConfluentConsumer(self.spec, consumer_id)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
