"""Request-reply on Kinesis: a reply stream per requester, `<stream>.reply-<requester>`,
of one shard, made at provisioning and deleted at teardown.

A responder PutRecords each reply (the request's header: run, requester, sequence) to
its requester's stream, the correlation id `<requester>-<seq>` as the partition key, one
call per requester and batch, before its requests are checkpointed. The requester reads
its own stream from TRIM_HORIZON (the stream is the run's and holds replies to it alone,
so nothing made before the first request is missed) with GetRecords, no checkpoints.

Kinesis has no server-side wait: GetRecords answers at once, empty or not, and a shard
takes five calls a second. So the requester reads every `read_interval` (0.2 s, the
service's limit), and a reply waits for the next read: that cadence, with the
responders' reads of the request stream, is the round trip's floor.
"""

import time

from lab import messages
from lab.brokers.contract import BrokerError, ReplyReceiver, ReplySender, RunSpec
from lab.brokers.kinesis import streams
from lab.brokers.kinesis.client import Client, make_client, stream_name

READ_LIMIT = 10_000  # a requester's replies never come near it: a window's worth at most


def names(spec: RunSpec) -> list[str]:
    """The run's reply streams, one per requester, as the admin endpoint names them."""
    if not spec.recipe.request_reply:
        return []
    return [stream_name(spec.admin, spec.reply_to(i)) for i in range(spec.recipe.producers.count)]


def correlation_id(reply: bytes) -> str:
    header = messages.decode(reply)
    return f"{header.producer}-{header.seq}" if header else "reply"


class KinesisReplySender(ReplySender):
    def __init__(self, spec: RunSpec, consumer_id: int) -> None:
        self.spec = spec
        self.client: Client = make_client(spec.endpoint)

    def send(self, replies: list[tuple[int, bytes]]) -> None:
        by_requester: dict[int, list[dict]] = {}
        for requester, reply in replies:
            entry = {"Data": reply, "PartitionKey": correlation_id(reply)}
            by_requester.setdefault(requester, []).append(entry)
        for requester, entries in by_requester.items():
            name = stream_name(self.spec.endpoint, self.spec.reply_to(requester))
            # Every reply stored, or an error: the requests are then not checkpointed and
            # are answered again (a duplicate reply rather than none).
            streams.put_all(self.client, name, entries)

    def close(self) -> None:
        self.client.close()


class KinesisReplyReceiver(ReplyReceiver):
    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        self.client: Client = make_client(spec.endpoint)
        self.stream = stream_name(spec.endpoint, spec.reply_to(producer_id))
        self.interval = spec.options.read_interval
        shards = streams.shards(self.client, self.stream)
        if len(shards) != 1:
            raise BrokerError(f"kinesis: reply stream {self.stream} has {len(shards)} open shards")
        self.shard = shards[0].id
        self.last: str | None = None  # sequence number of the last reply read
        self.iterator: str | None = streams.iterator(self.client, self.stream, self.shard, None)
        self.next_read = 0.0  # monotonic time of the next GetRecords allowed

    def receive(self, timeout: float) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if now < self.next_read:
                if self.next_read > deadline:
                    time.sleep(max(0.0, deadline - now))
                    return []
                time.sleep(self.next_read - now)
            replies = self._read()
            if replies or time.monotonic() >= deadline:
                return replies

    def _read(self) -> list[bytes]:
        self.next_read = time.monotonic() + self.interval
        if self.iterator is None:
            self.iterator = streams.iterator(self.client, self.stream, self.shard, self.last)
        try:
            answer = streams.read(self.client, self.iterator, READ_LIMIT)
        except BrokerError as exc:
            self.iterator = None  # expired (five minutes without a read) or a restart
            if streams.expired(exc):
                return []
            raise
        self.iterator = answer.get("NextShardIterator")
        records = answer["Records"]
        if records:
            self.last = records[-1]["SequenceNumber"]
        return [r["Data"] for r in records]

    def close(self) -> None:
        self.client.close()
