"""Dead letters: a second stream, `<stream>.dlq`, of one shard.

Kinesis records carry data and a partition key, nothing else, so a dead letter is the
original payload behind a small envelope with the reason, the attempts and the first
and last failure. Kinesis cannot delete a record either: what was redriven stays in the
dead-letter stream until retention removes it, and the dead-letter stream has a
checkpoint like any consumer's (checkpoints.py). Browsing reads what comes after it;
redrive puts those payloads back into the main stream (attempts start again) and then
moves the checkpoint past them, so a redrive that fails halfway sends nothing twice.
"""

import struct
from collections.abc import Iterator

from lab.brokers.contract import DeadLetter, DeadLetterInfo, RunSpec, dead_letter_of
from lab.brokers.kinesis import streams
from lab.brokers.kinesis.checkpoints import CheckpointStore
from lab.brokers.kinesis.client import Client, position
from lab.brokers.kinesis.tail import READ_LIMIT

_ENVELOPE = struct.Struct("<4sIddH")  # magic, attempts, first failure, last failure, len
MAGIC = b"BLDL"
ENVELOPE_ROOM = 1024  # what an envelope may add: the main stream's records stay this short
REDRIVE_CHUNK = streams.MAX_PUT_RECORDS
MAX_READS = 10_000  # GetRecords calls of one browse or redrive, so a broken server ends it


def envelope(payload: bytes, info: DeadLetterInfo) -> bytes:
    reason = info.reason.encode()[: ENVELOPE_ROOM - _ENVELOPE.size]
    head = _ENVELOPE.pack(MAGIC, info.attempts, info.first_failure, info.last_failure, len(reason))
    return head + reason + payload


def open_envelope(data: bytes) -> tuple[bytes, DeadLetterInfo]:
    """The payload and the dead letter's info; a record without an envelope (someone
    else's) is its own payload, with nothing known about it."""
    if len(data) < _ENVELOPE.size or data[:4] != MAGIC:
        return data, DeadLetterInfo("", 0, 0.0, 0.0)
    _, attempts, first, last, length = _ENVELOPE.unpack_from(data)
    start = _ENVELOPE.size
    reason = data[start : start + length].decode(errors="replace")
    return data[start + length :], DeadLetterInfo(reason, attempts, first, last)


def records(client: Client, store: CheckpointStore, name: str) -> Iterator[tuple[str, dict]]:
    """(shard id, record) of every dead letter after the stream's checkpoint, oldest
    first, up to the end as it is now."""
    after = store.checkpoints(name)
    for shard in streams.shards(client, name):
        shard_iterator = streams.iterator(client, name, shard.id, after.get(shard.id))
        for _ in range(MAX_READS):
            answer = streams.read(client, shard_iterator, READ_LIMIT)
            for record in answer["Records"]:
                yield shard.id, record
            shard_iterator = answer.get("NextShardIterator")
            if shard_iterator is None or not answer["Records"]:
                break


def browse(
    client: Client, store: CheckpointStore, spec: RunSpec, name: str, limit: int
) -> list[DeadLetter]:
    letters = []
    for _, record in records(client, store, name):
        if len(letters) >= limit:
            break
        payload, info = open_envelope(record["Data"])
        sequence = record["SequenceNumber"]
        # Its place in the shard where the number's layout tells it: 56 digits are no id
        # to read in a table.
        found = position(sequence)
        letters.append(
            dead_letter_of(
                str(found) if found >= 0 else sequence,
                spec.run_id,
                payload,
                info.reason,
                info.attempts,
                info.first_failure,
                info.last_failure,
            )
        )
    return letters


def redrive(client: Client, store: CheckpointStore, name: str, main: str) -> int:
    targets = streams.shards(client, main)
    moved = 0
    chunk: list[tuple[str, dict]] = []

    def send() -> None:
        nonlocal moved
        entries = [
            {
                "Data": open_envelope(record["Data"])[0],
                "PartitionKey": record["PartitionKey"],
                "ExplicitHashKey": targets[(moved + i) % len(targets)].start_hash,
            }
            for i, (_, record) in enumerate(chunk)
        ]
        streams.put_all(client, main, entries)
        store.advance(name, {shard: record["SequenceNumber"] for shard, record in chunk})
        moved += len(chunk)
        chunk.clear()

    for item in records(client, store, name):
        chunk.append(item)
        if len(chunk) >= REDRIVE_CHUNK:
            send()
    if chunk:
        send()
    return moved
