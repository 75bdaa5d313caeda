"""The workload's producer (PutRecords) and consumer (shard iterators, checkpoints)."""

import time
from collections import deque
from dataclasses import dataclass, field

from lab.brokers.contract import (
    Ack,
    BrokerError,
    ConsumerClient,
    DeadLetterInfo,
    Delivery,
    Outgoing,
    RunSpec,
    SynchronousProducer,
)
from lab.brokers.kinesis import dlq as kinesis_dlq
from lab.brokers.kinesis import streams
from lab.brokers.kinesis.checkpoints import CheckpointStore
from lab.brokers.kinesis.client import make_client, position, stream_name

MAX_DATA = streams.MAX_RECORD - kinesis_dlq.ENVELOPE_ROOM
CLAIM_EVERY = 1.0  # seconds between lease renewals of a consumer the engine did not assign


class KinesisProducer(SynchronousProducer):
    """PutRecords, synchronously: a record is acked once the call returned its sequence
    number. Records go to the shards in turn (ExplicitHashKey), so every shard gets the
    same share, as the other brokers' partitions do."""

    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        self.client = make_client(spec.endpoint)
        self.stream = stream_name(spec.endpoint, spec.queue)
        self.batch = spec.options.put_batch
        self.key_prefix = f"p{producer_id}-"
        self.shards = streams.shards(self.client, self.stream)  # connects, before ready
        self._next = producer_id  # producers start on different shards
        super().__init__()

    def send(self, batch: list[Outgoing]) -> None:
        fits = []
        for msg in batch:
            if len(msg.payload) > MAX_DATA:
                why = f"kinesis: a record holds at most {MAX_DATA} bytes here (Kinesis: 1 MiB)"
                self._acks.append(Ack(msg.seq, msg.intended_ns, False, why))
            else:
                fits.append(msg)
        sizes = [len(m.payload) + 24 for m in fits]
        for n, (start, end) in enumerate(streams.chunks(sizes, self.batch)):
            try:
                self._put(fits[start:end])
            except BrokerError as exc:
                if n == 0:
                    raise
                # Earlier calls of this batch were stored and acked: keep those acks,
                # and count the rest as refused, whatever the broker kept of them.
                self._acks += [Ack(m.seq, m.intended_ns, False, str(exc)) for m in fits[start:]]
                return

    def _put(self, msgs: list[Outgoing]) -> None:
        entries = []
        for msg in msgs:
            shard = self.shards[self._next % len(self.shards)]
            self._next += 1
            entries.append(
                {
                    "Data": msg.payload,
                    "PartitionKey": f"{self.key_prefix}{msg.seq}",
                    "ExplicitHashKey": shard.start_hash,
                }
            )
        index = {s.id: s.index for s in self.shards}
        results = streams.put(self.client, self.stream, entries)
        for msg, result in zip(msgs, results, strict=True):
            if "ErrorCode" in result:
                error = f"kinesis: {result['ErrorCode']}: {result.get('ErrorMessage', '')}"
                self._acks.append(Ack(msg.seq, msg.intended_ns, False, error))
            else:
                sequence = result["SequenceNumber"]
                partition = index.get(result["ShardId"], 0)
                self._acks.append(
                    Ack(msg.seq, msg.intended_ns, True, None, partition, position(sequence))
                )

    def close(self) -> None:
        self.client.close()


@dataclass(eq=False)
class ShardReader:
    """One shard this consumer owns: where it reads, what it handed out, what is settled."""

    shard: streams.Shard
    checkpoint: str | None  # sequence number of the last settled record
    iterator: str | None = None
    last_read: str | None = None  # sequence number of the last record read
    next_read: float = 0.0  # monotonic time of the next GetRecords allowed
    buffer: deque = field(default_factory=deque)  # records read, not yet handed out
    out: deque = field(default_factory=deque)  # sequence numbers handed out, in order
    settled: set = field(default_factory=set)

    def settle(self, sequence: str) -> bool:
        """Whether the checkpoint moved: every record up to it is settled now."""
        self.settled.add(sequence)
        moved = False
        while self.out and self.out[0] in self.settled:
            self.checkpoint = self.out.popleft()
            self.settled.discard(self.checkpoint)
            moved = True
        return moved


@dataclass(frozen=True, slots=True)
class Handle:
    reader: ShardReader
    sequence: str


class KinesisConsumer(ConsumerClient):
    """Reads the shards it owns, oldest first, and checkpoints after processing.

    The engine says which shards (assign), as the Kinesis Client Library's leases do; a
    consumer that was never told takes leases itself (checkpoints.py). Kinesis has no
    negative ack: a rejected record is handed out again by this consumer, its attempts
    counted here, and the shard's checkpoint stays below it until it is acked or
    dead-lettered, as a KCL record processor retries in place."""

    def __init__(self, spec: RunSpec, consumer_id: int) -> None:
        self.spec = spec
        self.client = make_client(spec.endpoint)
        self.stream = stream_name(spec.endpoint, spec.queue)
        self.dlq = stream_name(spec.endpoint, spec.dead_letter_queue)
        # Pub-sub: the subscriber's own checkpoints (and leases), so it reads every record.
        directory = spec.broker_dir() / "checkpoints"
        self.store = CheckpointStore(self.stream, directory, spec.subscriber)
        self.owner = f"consumer-{consumer_id}-{time.time_ns()}"
        self.interval = spec.options.read_interval
        self.limit = spec.options.read_limit
        self.shards = streams.shards(self.client, self.stream)
        self.readers: dict[int, ShardReader] = {}
        self.assigned: list[int] | None = None
        self._again: deque[Delivery] = deque()  # rejected: handed out first
        self._turn = 0
        self._next_claim = 0.0

    # --- which shards -------------------------------------------------------------------

    def assign(self, partitions: list[int]) -> None:
        self.assigned = list(partitions)
        self._own([p for p in partitions if p < len(self.shards)])

    def _own(self, indexes: list[int]) -> None:
        for gone in set(self.readers) - set(indexes):
            del self.readers[gone]  # its deliveries in flight are its new owner's now
        self._again = deque(d for d in self._again if self._owns(d))
        fresh = [i for i in indexes if i not in self.readers]
        if fresh:
            points = self.store.checkpoints(self.stream)
            for i in fresh:
                shard = self.shards[i]
                self.readers[i] = ShardReader(shard, points.get(shard.id))

    def _claim(self) -> None:
        self._next_claim = time.monotonic() + CLAIM_EVERY
        held = set(self.store.claim(self.owner, [s.id for s in self.shards]))
        self._own([s.index for s in self.shards if s.id in held])

    def _owns(self, delivery: Delivery) -> bool:
        reader = delivery.handle.reader
        return self.readers.get(reader.shard.index) is reader

    # --- reading ------------------------------------------------------------------------

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self.assigned is None and time.monotonic() >= self._next_claim:
            self._claim()
        if self._again:
            return [self._again.popleft() for _ in range(min(max_messages, len(self._again)))]
        deadline = time.monotonic() + timeout
        while True:
            got = self._take(max_messages)
            if got:
                return got
            wait = min((r.next_read for r in self.readers.values()), default=deadline)
            now = time.monotonic()
            if now >= deadline:
                return []
            if wait > now:
                time.sleep(min(wait, deadline) - now)

    def _take(self, max_messages: int) -> list[Delivery]:
        """Hand out buffered records, reading more from shards whose turn it is; each shard
        in turn, so that one busy shard cannot starve the others."""
        readers = list(self.readers.values())
        got: list[Delivery] = []
        for k in range(len(readers)):
            reader = readers[(self._turn + k) % len(readers)]
            if not reader.buffer and time.monotonic() >= reader.next_read:
                self._read(reader)
            while reader.buffer and len(got) < max_messages:
                record = reader.buffer.popleft()
                sequence = record["SequenceNumber"]
                reader.out.append(sequence)
                got.append(Delivery(record["Data"], Handle(reader, sequence), 1))
            if len(got) >= max_messages:
                break
        self._turn += 1
        return got

    def _read(self, reader: ShardReader) -> None:
        reader.next_read = time.monotonic() + self.interval
        if reader.iterator is None:
            after = reader.last_read or reader.checkpoint
            reader.iterator = streams.iterator(self.client, self.stream, reader.shard.id, after)
        try:
            answer = streams.read(self.client, reader.iterator, self.limit)
        except BrokerError as exc:
            reader.iterator = None  # expired (idle five minutes) or the server restarted
            if streams.expired(exc):
                return
            raise
        reader.iterator = answer.get("NextShardIterator")
        records = answer["Records"]
        if records:
            reader.buffer.extend(records)
            reader.last_read = records[-1]["SequenceNumber"]

    # --- settling -----------------------------------------------------------------------

    def ack(self, deliveries: list[Delivery]) -> None:
        self._settle(deliveries)

    def _settle(self, deliveries: list[Delivery]) -> None:
        points = {}
        for d in deliveries:
            if self._owns(d) and d.handle.reader.settle(d.handle.sequence):
                reader = d.handle.reader
                points[reader.shard.id] = reader.checkpoint
        self.store.advance(self.stream, points)

    def reject(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            if self._owns(d):
                self._again.append(Delivery(d.payload, d.handle, d.attempts + 1))

    def dead_letter(self, letters: list[tuple[Delivery, DeadLetterInfo]]) -> None:
        mine = [(d, info) for d, info in letters if self._owns(d)]
        if not mine:
            return
        entries = [
            {"Data": kinesis_dlq.envelope(d.payload, info), "PartitionKey": d.handle.sequence[-32:]}
            for d, info in mine
        ]
        streams.put_all(self.client, self.dlq, entries)  # first the dead letters...
        self._settle([d for d, _ in mine])  # ...then the checkpoint may pass the originals

    def close(self) -> None:
        if self.assigned is None:
            self.store.release(self.owner)
        self.client.close()
