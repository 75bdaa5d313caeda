"""Kafka's retention, retries and dead letters, for the Kafka adapter (kafka.py).

Retention. A recipe's limits become topic configs at creation: `retention.ms` for
max_age, and a `retention.bytes` per partition for max_bytes and max_messages (Kafka has
no count limit: a message counts as the recipe's mean size plus RECORD_OVERHEAD). Kafka
deletes whole segments only, and only when its retention check comes round (every 5 s in
the lab's native broker), so the topic also gets small segments: rolled by time, because
Kafka 4 refuses segment.bytes below 1 MiB. What retention deleted shows as each
partition's log start offset; the probe reports those as the retention floor, and the
engine names the acked messages below it from the offsets their acks carried.

Retries. Kafka has no per-message negative ack: seeking back to a rejected offset would
deliver everything after it again. A rejected message is instead re-published to the end
of its partition with `x-lab-attempts` counted up (and `x-lab-first-failure` kept), and
the original is acked once the copy is stored. Retried messages therefore move to the end
of their partition, behind everything produced meanwhile.

Dead letters go to `<topic>.dlq` (one partition, kept until redriven or torn down) with
the reason, attempts and failure times as headers; the original is acked only after the
broker confirmed the dead letter. Redrive re-publishes them to the main topic without
those headers (attempts start again), then deletes them from the DLQ (DeleteRecords).
"""

import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator

import confluent_kafka
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from lab.brokers.contract import (
    BrokerError,
    ConsumerClient,
    DeadLetter,
    DeadLetterInfo,
    Delivery,
    RunSpec,
    dead_letter_of,
)
from lab.recipes.model import Recipe

# Bytes a record takes on disk besides its value: about 10 of its own framing, plus a
# share of its batch's 61-byte header (batches of about six records at lab rates).
RECORD_OVERHEAD = 20
MIN_SEGMENT_BYTES = 1 << 20  # Kafka 4's lower bound for segment.bytes
MAX_SEGMENT_BYTES = 1 << 30  # Kafka's default
# A segment holds about a tenth of what retention keeps, so retention deletes in steps of
# about a tenth; within these bounds (a quicker roll makes files faster than it helps).
SEGMENTS_PER_RETENTION = 10
MIN_SEGMENT_S = 0.2
MAX_SEGMENT_S = 60.0
REDRIVE_CHUNK = 1000  # dead letters re-published per wait for the broker's confirmations

REASON = "x-lab-reason"
ATTEMPTS = "x-lab-attempts"
FIRST_FAILURE = "x-lab-first-failure"
LAST_FAILURE = "x-lab-last-failure"

Headers = list[tuple[str, bytes]]
# What to publish: (topic, partition or -1 for the partitioner's choice, value, headers).
Record = tuple[str, int, bytes, Headers | None]


# --- retention ---------------------------------------------------------------------------


def has_retention(recipe: Recipe) -> bool:
    r = recipe.retention
    return bool(r.max_age or r.max_messages or r.max_bytes)


def retention_bytes(recipe: Recipe) -> int:
    """retention.bytes per partition for the recipe's size limits; 0 when it has none."""
    r = recipe.retention
    limits = []
    if r.max_bytes:
        limits.append(r.max_bytes / recipe.partitions)
    if r.max_messages:
        limits.append(r.max_messages * (recipe.mean_size + RECORD_OVERHEAD) / recipe.partitions)
    return max(1, int(min(limits))) if limits else 0


def segment_ms(recipe: Recipe) -> int:
    """Segments roll by time: a tenth of the shortest of max_age and the time one
    partition takes to fill retention.bytes at the recipe's base rate."""
    spans = []
    if recipe.retention.max_age:
        spans.append(recipe.retention.max_age)
    limit = retention_bytes(recipe)
    if limit:
        per_partition = recipe.rate.rate / recipe.partitions * (recipe.mean_size + RECORD_OVERHEAD)
        spans.append(limit / per_partition)
    span = min(spans) / SEGMENTS_PER_RETENTION
    return int(min(max(span, MIN_SEGMENT_S), MAX_SEGMENT_S) * 1000)


def topic_configs(recipe: Recipe) -> dict[str, str]:
    """The main topic's configs for the recipe's retention; none without one."""
    if not has_retention(recipe):
        return {}
    configs = {"segment.ms": str(segment_ms(recipe))}
    if recipe.retention.max_age:
        configs["retention.ms"] = str(int(recipe.retention.max_age * 1000))
    limit = retention_bytes(recipe)
    if limit:
        configs["retention.bytes"] = str(limit)
        segment = limit // SEGMENTS_PER_RETENTION
        configs["segment.bytes"] = str(min(max(segment, MIN_SEGMENT_BYTES), MAX_SEGMENT_BYTES))
    return configs


def settings(spec: RunSpec) -> dict[str, str]:
    """How the recipe's retention was mapped, and how retries and dead letters work."""
    recipe = spec.recipe
    configs = topic_configs(recipe)
    out = {"retention": "none (Kafka's default: 7 days)"}
    if configs:
        out["retention"] = (
            ", ".join(f"{k}={v}" for k, v in configs.items())
            + " (whole segments are deleted, at the broker's retention check)"
        )
    r = recipe.retention
    if r.max_messages:
        out["retention_max_messages"] = (
            f"{r.max_messages} messages x ({recipe.mean_size:g} B mean size"
            f" + {RECORD_OVERHEAD} B record overhead) / {recipe.partitions} partitions"
            " = retention.bytes per partition (Kafka has no count limit)"
        )
    if r.max_bytes:
        out["retention_max_bytes"] = f"{r.max_bytes} B / {recipe.partitions} partitions"
    out["retries"] = (
        f"re-published to the end of the partition with header {ATTEMPTS},"
        " then the original committed"
    )
    out["dead_letters"] = (
        f"topic {spec.dead_letter_queue} (1 partition, no retention limit), x-lab-* headers;"
        " the original committed after the broker confirmed the dead letter;"
        " redrive: re-published, then DeleteRecords"
    )
    return out


def dlq_topic(spec: RunSpec) -> NewTopic:
    # Dead letters wait for someone to look at them: no time limit.
    return NewTopic(
        spec.dead_letter_queue,
        num_partitions=1,
        replication_factor=1,
        config={"retention.ms": "-1"},
    )


# --- headers -----------------------------------------------------------------------------


def attempts_of(headers: list[tuple[str, bytes | None]] | None) -> tuple[int, float | None]:
    """(delivery attempt, first failure) a record carries: 1 and None the first time."""
    attempts, first = 1, None
    for key, value in headers or ():
        if value is None:
            continue
        if key == ATTEMPTS:
            attempts = int(value)
        elif key == FIRST_FAILURE:
            first = float(value)
    return attempts, first


def retry_headers(attempts: int, first_failure: float | None, now: float) -> Headers:
    """Headers of the copy that replaces a rejected delivery of attempt `attempts`."""
    first = now if first_failure is None else first_failure
    return [(ATTEMPTS, str(attempts + 1).encode()), (FIRST_FAILURE, repr(first).encode())]


def dead_letter_headers(info: DeadLetterInfo, first_failure: float | None) -> Headers:
    # The record's own first failure may predate the worker's: another consumer may have
    # failed it first, before a rebalance.
    first = info.first_failure if first_failure is None else min(first_failure, info.first_failure)
    return [
        (REASON, info.reason.encode()),
        (ATTEMPTS, str(info.attempts).encode()),
        (FIRST_FAILURE, repr(first).encode()),
        (LAST_FAILURE, repr(info.last_failure).encode()),
    ]


# --- a consumer's retries and dead letters, for both clients -----------------------------


class RetryingConsumer(ConsumerClient):
    """reject and dead_letter for both Kafka clients: each re-publishes through its own
    client's producer (`_publish`), then acks the originals.

    Only deliveries from partitions this consumer still owns are handled: a partition that
    moved to another consumer is read again from its last commit, these included, so a
    copy made here would be a second one."""

    _spec: RunSpec
    _topic: str

    @abstractmethod
    def _owns(self, delivery: Delivery) -> bool: ...

    @abstractmethod
    def _publish(self, records: Iterable[Record]) -> None:
        """Store the records; returns only once the broker has them all."""

    def reject(self, deliveries: list[Delivery]) -> None:
        """Re-publish each to the end of its partition, attempts counted up, then ack it:
        a retried message comes back behind everything produced meanwhile."""
        mine = [d for d in deliveries if self._owns(d)]
        if not mine:
            return
        now = time.time()
        self._publish(
            (
                self._topic,
                d.handle.part.number,
                d.payload,
                retry_headers(d.attempts, d.handle.first_failure, now),
            )
            for d in mine
        )
        self.ack(mine)

    def dead_letter(self, letters: list[tuple[Delivery, DeadLetterInfo]]) -> None:
        mine = [(d, info) for d, info in letters if self._owns(d)]
        if not mine:
            return
        dlq = self._spec.dead_letter_queue
        self._publish(
            (dlq, 0, d.payload, dead_letter_headers(info, d.handle.first_failure))
            for d, info in mine
        )
        self.ack([d for d, _ in mine])


# --- publishing, browsing and redriving (confluent-kafka) ----------------------------------


def publish(producer: confluent_kafka.Producer, records: Iterable[Record], timeout: float) -> int:
    """Produce the records and wait until the broker stored every one; BrokerError if it
    did not (some may be stored nonetheless: the caller must not ack the originals)."""
    deadline = time.monotonic() + timeout
    errors: list[KafkaError] = []

    def report(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    count = 0
    for topic, partition, value, headers in records:
        while True:
            try:
                producer.produce(
                    topic, value, partition=partition, headers=headers, on_delivery=report
                )
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise BrokerError("kafka: the producer's queue stayed full") from None
                producer.poll(0.05)
        count += 1
    left = producer.flush(max(0.0, deadline - time.monotonic()))
    if errors:
        raise BrokerError(f"kafka: {len(errors)} of {count} records not stored: {errors[0].str()}")
    if left:
        raise BrokerError(f"kafka: {left} of {count} records unconfirmed after {timeout:g} s")
    return count


def _watermarks(reader: confluent_kafka.Consumer, tp: TopicPartition, timeout: float) -> tuple:
    return reader.get_watermark_offsets(tp, timeout=timeout, cached=False)


def _records(
    reader: confluent_kafka.Consumer, tp: TopicPartition, start: int, end: int, timeout: float
) -> Iterator[confluent_kafka.Message]:
    """Records of one partition from `start` up to (not including) `end`, read with
    assign(), outside any group: nothing is committed, nothing taken from anyone else."""
    if start >= end:
        return
    reader.assign([TopicPartition(tp.topic, tp.partition, start)])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for m in reader.consume(500, 0.2):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        return  # nothing more to read, whatever the watermarks said
                    if err.fatal() or not err.retriable():
                        raise BrokerError(f"kafka: reading {tp.topic}: {err.str()}")
                    continue
                if m.offset() >= end:
                    return
                yield m
                if m.offset() >= end - 1:
                    return
        raise BrokerError(f"kafka: reading {tp.topic} took longer than {timeout:g} s")
    finally:
        reader.unassign()


def browse(
    reader: confluent_kafka.Consumer, spec: RunSpec, limit: int, timeout: float
) -> list[DeadLetter]:
    tp = TopicPartition(spec.dead_letter_queue, 0)
    low, high = _watermarks(reader, tp, timeout)
    letters = []
    for m in _records(reader, tp, low, min(high, low + limit), timeout):
        h = {k: v.decode() for k, v in m.headers() or () if v is not None}
        first = float(h.get(FIRST_FAILURE, 0))
        letters.append(
            dead_letter_of(
                f"{m.partition()}:{m.offset()}",
                spec.run_id,
                m.value() or b"",
                h.get(REASON, ""),
                int(h.get(ATTEMPTS, 0)),
                first,
                float(h.get(LAST_FAILURE, first)),
            )
        )
    return letters


def redrive(
    reader: confluent_kafka.Consumer,
    producer: confluent_kafka.Producer,
    admin: AdminClient,
    spec: RunSpec,
    timeout: float,
) -> int:
    """Re-publish every dead letter to the main topic, then delete them from the DLQ.
    Letters that arrive during a redrive stay for the next one; a redrive that fails
    before the delete leaves all of them, so a second one may send some twice."""
    tp = TopicPartition(spec.dead_letter_queue, 0)
    low, high = _watermarks(reader, tp, timeout)
    moved = 0
    chunk: list[Record] = []
    for m in _records(reader, tp, low, high, timeout):
        chunk.append((spec.queue, -1, m.value() or b"", None))
        if len(chunk) >= REDRIVE_CHUNK:
            moved += publish(producer, chunk, timeout)
            chunk = []
    moved += publish(producer, chunk, timeout)
    if high > low:
        futures = admin.delete_records([TopicPartition(tp.topic, 0, high)], request_timeout=timeout)
        for future in futures.values():
            future.result()
    return moved
