"""Kinesis Data Streams: a stream per run whose shards are the recipe's partitions.

Producers PutRecords; consumers own shards, which the engine assigns and reassigns as
the Kinesis Client Library's leases do, read them with shard iterators and checkpoint
after processing (clients.py, checkpoints.py). Retention is the stream's
RetentionPeriodHours, 24 at the least: the trim horizon is the retention floor, as Kafka's
log start offset is. Dead letters go to a second stream (dlq.py). Kinesis counts no
backlog in records, so the probe reads the streams once and counts (tail.py).

Pub-sub: each subscriber reads every shard, as a Kinesis Client Library application of its
own: the engine shares the shards among that subscriber's consumers, which checkpoint in
the subscriber's own file, and the probe counts each subscriber's lag from its
checkpoints. Request-reply: a reply stream per requester (replies.py).
"""

import contextlib
import time

import boto3

from lab.brokers.contract import (
    BrokerAdapter,
    BrokerError,
    ConsumerClient,
    DeadLetter,
    Probe,
    ProducerClient,
    RunSpec,
)
from lab.brokers.kinesis import dlq as kinesis_dlq
from lab.brokers.kinesis import replies, streams
from lab.brokers.kinesis.checkpoints import CheckpointStore
from lab.brokers.kinesis.client import (
    ERRORS,
    Client,
    broker_error,
    make_client,
    order_key,
    stream_name,
)
from lab.brokers.kinesis.settings import DLQ_HOURS, MIN_HOURS, retention_hours, run_settings
from lab.brokers.kinesis.tail import FINAL_READS, PROBE_LIMIT, ShardTail

FLOOR_EVERY = 10.0  # seconds between trim-horizon reads while running (one call a shard)
PROBE_SECONDS = 0.2  # reading time of a probe while running; it comes twice a second
PROBE_READS = 5  # GetRecords calls a shard, at most, per probe while running


class KinesisAdapter(BrokerAdapter):
    name = "kinesis"

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self.stream = stream_name(spec.admin, spec.queue)
        self.dlq = stream_name(spec.admin, spec.dead_letter_queue)
        self.reply_streams = replies.names(spec)
        directory = spec.broker_dir() / "checkpoints"
        self.store = CheckpointStore(self.stream, directory)
        # Pub-sub: a file of checkpoints per subscriber (checkpoints.py).
        self.stores = {
            sub: CheckpointStore(self.stream, directory, sub) for sub in spec.subscribers if sub
        }
        self._client: Client | None = None
        self._tails: dict[str, list[ShardTail]] | None = None
        self._floors: dict[int, int] = {}
        self._next_floor = 0.0

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = make_client(self.spec.admin)
        return self._client

    @property
    def _retained(self) -> bool:
        return bool(self.spec.recipe.retention.max_age)

    def provision(self) -> None:
        for store in (self.store, *self.stores.values()):
            store.create()
        try:
            streams.create(self.client, self.stream, self.spec.recipe.partitions)
            # Dead letters wait for someone to look at them: one shard, kept a week.
            streams.create(self.client, self.dlq, 1)
            # Request-reply: a one-shard stream per requester (replies.py).
            for name in self.reply_streams:
                streams.create(self.client, name, 1)
            for name in (self.stream, self.dlq, *self.reply_streams):
                streams.wait_active(self.client, name)
            self._retain(self.stream, retention_hours(self.spec.recipe.retention.max_age))
            self._retain(self.dlq, DLQ_HOURS)
        except BrokerError:
            # Streams count against the account's shard limit: leave none half made.
            self.teardown()
            raise

    def _retain(self, name: str, hours: int) -> None:
        if hours == MIN_HOURS:
            return  # a new stream's own
        try:
            self.client.increase_stream_retention_period(
                StreamName=name, RetentionPeriodHours=hours
            )
        except ERRORS as exc:
            raise broker_error(f"setting the retention of {name}", exc) from exc
        streams.wait_active(self.client, name)

    # --- probe ----------------------------------------------------------------------------

    def _make_tails(self) -> dict[str, list[ShardTail]]:
        tails = {}
        for name, keep_all in ((self.stream, self._retained), (self.dlq, False)):
            shards = streams.shards(self.client, name)
            tails[name] = [ShardTail(name, s.id, keep_all) for s in shards]
        return tails

    def probe(self, final: bool = False) -> Probe:
        if self._tails is None:
            self._tails = self._make_tails()
        if final:
            for tail in self._all_tails():
                tail.read(self.client, FINAL_READS)
        else:
            # Twice a second: a share of the time, so a backlog is counted over some probes.
            until = time.monotonic() + PROBE_SECONDS
            for tail in self._all_tails():
                tail.read(self.client, PROBE_READS, PROBE_LIMIT, until)
        if self._retained and (final or time.monotonic() >= self._next_floor):
            self._next_floor = time.monotonic() + FLOOR_EVERY
            self._read_floors()
        data = self.store.read().get("checkpoints", {})
        dead = data.get(self.dlq, {})
        points = {sub: self._checkpoints(sub, data) for sub in self.spec.subscribers}
        depths = {sub: self._depth(mine) for sub, mine in points.items()}
        # A record every subscriber has settled is never counted again.
        for tail in self._tails[self.stream]:
            tail.forget_through(_slowest([mine.get(tail.shard) for mine in points.values()]))
        letters = 0
        for tail in self._tails[self.dlq]:
            letters += tail.after(dead.get(tail.shard))
            tail.forget_through(dead.get(tail.shard))
        caught_up = all(t.caught_up for t in self._all_tails())
        dropped = None
        if self._retained:
            tails = self._tails[self.stream]
            dropped = sum(t.below(self._floors.get(n, 0)) for n, t in enumerate(tails))
        return Probe(
            depth=sum(depths.values()),
            subscriber_depths=depths if self.spec.recipe.pattern == "pub-sub" else {},
            dead_letters=letters,
            retention_dropped=dropped,
            retention_floor=dict(self._floors) if self._retained else {},
            detail={"counted_to_end": caught_up},
        )

    def _checkpoints(self, subscriber: str, data: dict) -> dict[str, str]:
        """One subscriber's checkpoints of the main stream: shard id -> sequence number.
        `data`: the run's file, which holds the work queue's."""
        if subscriber:
            data = self.stores[subscriber].read().get("checkpoints", {})
        return data.get(self.stream, {})

    def _depth(self, points: dict[str, str]) -> int:
        """Records after a subscriber's checkpoints: its lag, as Kinesis would count it from
        the shards' latest sequence numbers if it counted records."""
        depth = 0
        for n, tail in enumerate(self._tails[self.stream]):
            unread = tail.after(points.get(tail.shard))
            floor = self._floors.get(n)
            if floor is not None:
                # What expired before anyone processed it is not held either.
                processed = len(tail.keys) - unread
                unread -= max(0, tail.below(floor) - processed)
            depth += unread
        return depth

    def _all_tails(self) -> list[ShardTail]:
        return [t for tails in (self._tails or {}).values() for t in tails]

    def _read_floors(self) -> None:
        for n, tail in enumerate(self._tails[self.stream]):
            floor = tail.floor(self.client)
            if floor is not None:
                self._floors[n] = floor

    # --- the rest of the contract -----------------------------------------------------------

    def teardown(self, keep_dead_letters: bool = False) -> None:
        # The broker may be down at the end of a fault drill; then there is nothing to undo.
        with contextlib.suppress(BrokerError):
            for name in self.reply_streams:  # of no use to `lab dlq`
                streams.delete(self.client, name)
        if keep_dead_letters:
            return  # the streams and the checkpoints, for `lab dlq` later
        with contextlib.suppress(BrokerError):
            for name in (self.stream, self.dlq):
                streams.delete(self.client, name)
        for store in (self.store, *self.stores.values()):
            store.remove()

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        return kinesis_dlq.browse(self.client, self.store, self.spec, self.dlq, limit)

    def redrive(self) -> int:
        return kinesis_dlq.redrive(self.client, self.store, self.dlq, self.stream)

    def settings(self) -> dict[str, str]:
        return {**run_settings(self.spec, self.stream, self.dlq), "client": self.client_version()}

    def client_version(self) -> str:
        return f"boto3 {boto3.__version__}"

    def producer(self, producer_id: int) -> ProducerClient:
        from lab.brokers.kinesis.clients import KinesisProducer

        return KinesisProducer(self.spec, producer_id)

    def consumer(self, consumer_id: int) -> ConsumerClient:
        from lab.brokers.kinesis.clients import KinesisConsumer

        return KinesisConsumer(self.spec, consumer_id)

    def replier(self, consumer_id: int) -> replies.KinesisReplySender:
        return replies.KinesisReplySender(self.spec, consumer_id)

    def replies(self, producer_id: int) -> replies.KinesisReplyReceiver:
        return replies.KinesisReplyReceiver(self.spec, producer_id)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client: Client | None = None


def _slowest(points: list[str | None]) -> str | None:
    """The lowest of a shard's checkpoints (None when a subscriber has none yet)."""
    if not points or None in points:
        return None
    return min(points, key=order_key)
