"""What both Kafka clients share: the lab's client settings and OffsetTracker.

Kafka keeps one committed offset per partition, not an ack per message. OffsetTracker
folds the workers' per-message acks into that offset, and never lets it pass a message
still being processed: a consumer that dies loses nothing, though it may deliver some
messages twice (that is Kafka's at-least-once, and the ledger shows it).
"""

import logging
from collections.abc import Iterable
from typing import NamedTuple

import confluent_kafka
from confluent_kafka import (
    KafkaError,
)

from lab.brokers.contract import (
    Delivery,
    RunSpec,
)
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
CONNECT_TIMEOUT = 10.0
ADMIN_TIMEOUT = 30.0
PROBE_TIMEOUT = 2.0  # a probe runs twice a second: a stalled broker must not hold the engine
FINAL_PROBE_TIMEOUT = 10.0
COMMIT_INTERVAL = 0.1  # seconds between a consumer's coalesced offset commits
FLUSH_NOTE = "page cache (Kafka's default; one replica here)"


def bootstrap(ep: Endpoint) -> str:
    return f"[{ep.host}]:{ep.port}" if ":" in ep.host else f"{ep.host}:{ep.port}"


def reason(e: Exception) -> str:
    """What a client exception says, without the KafkaError{code=...} wrapping."""
    err = e.args[0] if e.args else None
    return err.str() if isinstance(err, KafkaError) else str(e)


def durability(recipe: Recipe) -> tuple[str, bool]:
    """(acks, idempotence) of the recipe's durability profile; fire-and-forget: acks=0,
    the broker answers nothing (and idempotence needs acks=all)."""
    if recipe.forget:
        return ("0", False)
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
        self._next_commit = 0.0  # monotonic time of the next coalesced commit

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

    def acked(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            part, offset = d.handle.part, d.handle.offset
            if self.partitions.get(part.number) is part:
                part.out.discard(offset)
                if offset >= part.acked:
                    part.acked = offset + 1

    def due(self, now: float) -> dict[int, int]:
        """Commit points that moved since the last commit, at most once per
        COMMIT_INTERVAL (else {}).

        A commit per acked batch (hundreds a second at 10k msgs/s) queues up at the group
        coordinator faster than it answers, and the lag read from committed offsets then
        trails the consumer by seconds. Coalesced, the committed offset stays within one
        interval of what was processed; a consumer that dies re-delivers at most that much
        more (at-least-once, counted by the ledger as duplicates).
        """
        if now < self._next_commit:
            return {}
        self._next_commit = now + COMMIT_INTERVAL
        points = {}
        for n, part in self.partitions.items():
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
