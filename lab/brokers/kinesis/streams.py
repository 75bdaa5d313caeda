"""Streams as the adapter and its clients use them: create, wait, list shards, put, read."""

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from lab.brokers.contract import BrokerError
from lab.brokers.kinesis.client import ERRORS, Client, broker_error, error_code

ADMIN_TIMEOUT = 120.0  # a real service takes about 30 s to make a stream ACTIVE
MAX_RECORD = 1 << 20  # Kinesis's limit: data and partition key together
MAX_PUT_BYTES = 5 << 20  # of one PutRecords call
MAX_PUT_RECORDS = 500
THROTTLED = ("ProvisionedThroughputExceededException", "LimitExceededException")


@dataclass(frozen=True)
class Shard:
    id: str
    index: int  # the lab's partition number: its place among the stream's shards
    start_hash: str  # an ExplicitHashKey that lands in it


def create(client: Client, name: str, shards: int) -> None:
    try:
        client.create_stream(StreamName=name, ShardCount=shards)
    except ERRORS as exc:
        raise broker_error(f"creating stream {name}", exc) from exc


def wait_active(client: Client, name: str, timeout: float = ADMIN_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    status = "unknown"
    while time.monotonic() < deadline:
        try:
            summary = client.describe_stream_summary(StreamName=name)
        except ERRORS as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise broker_error(f"describing stream {name}", exc) from exc
        else:
            status = summary["StreamDescriptionSummary"]["StreamStatus"]
            if status == "ACTIVE":
                return
        time.sleep(0.1)
    raise BrokerError(f"kinesis: stream {name} is still {status} after {timeout:g} s")


def delete(client: Client, name: str, timeout: float = ADMIN_TIMEOUT) -> None:
    """Delete the stream and wait until it is gone (a run id is never reused, but a
    stream being deleted still counts against the account's shard limit)."""
    try:
        client.delete_stream(StreamName=name)
    except ERRORS as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return
        raise broker_error(f"deleting stream {name}", exc) from exc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.describe_stream_summary(StreamName=name)
        except ERRORS as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return
            raise broker_error(f"deleting stream {name}", exc) from exc
        time.sleep(0.1)


def shards(client: Client, name: str) -> list[Shard]:
    """The stream's open shards, in shard id order: partition n is the n-th."""
    found, token = [], None
    try:
        while True:
            page = (
                client.list_shards(NextToken=token)
                if token
                else client.list_shards(StreamName=name)
            )
            found += page["Shards"]
            token = page.get("NextToken")
            if not token:
                break
    except ERRORS as exc:
        raise broker_error(f"listing the shards of {name}", exc) from exc
    open_ = sorted(
        (s for s in found if "EndingSequenceNumber" not in s["SequenceNumberRange"]),
        key=lambda s: s["ShardId"],
    )
    return [
        Shard(s["ShardId"], i, s["HashKeyRange"]["StartingHashKey"]) for i, s in enumerate(open_)
    ]


def chunks(sizes: Sequence[int], limit: int = MAX_PUT_RECORDS) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive PutRecords calls: at most `limit` records, 5 MiB."""
    start, total = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= limit or total + size > MAX_PUT_BYTES):
            yield start, i
            start, total = i, 0
        total += size
    if start < len(sizes):
        yield start, len(sizes)


def put(client: Client, name: str, entries: list[dict]) -> list[dict]:
    """One PutRecords call; its per-record results, in order (SequenceNumber and ShardId,
    or ErrorCode and ErrorMessage)."""
    try:
        return client.put_records(StreamName=name, Records=entries)["Records"]
    except ERRORS as exc:
        raise broker_error(f"PutRecords to {name}", exc) from exc


def put_all(client: Client, name: str, entries: list[dict]) -> list[str]:
    """Put every entry or raise: for dead letters and redrive, whose callers must not
    go on (ack an original, move a checkpoint) unless all were stored."""
    sequences: list[str] = []
    for start, end in chunks([len(e["Data"]) + len(e["PartitionKey"]) for e in entries]):
        results = put(client, name, entries[start:end])
        failed = [r for r in results if "ErrorCode" in r]
        if failed:
            first = failed[0]
            raise BrokerError(
                f"kinesis: {len(failed)} of {end - start} records not stored in {name}: "
                f"{first['ErrorCode']}: {first.get('ErrorMessage', '')}"
            )
        sequences += [r["SequenceNumber"] for r in results]
    return sequences


def iterator(client: Client, name: str, shard: str, after: str | None) -> str:
    """A shard iterator just after the sequence number `after`, or at the trim horizon."""
    kwargs = {"StreamName": name, "ShardId": shard}
    if after is None:
        kwargs["ShardIteratorType"] = "TRIM_HORIZON"
    else:
        kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
    try:
        return client.get_shard_iterator(**kwargs)["ShardIterator"]
    except ERRORS as exc:
        raise broker_error(f"GetShardIterator on {name} {shard}", exc) from exc


def read(client: Client, shard_iterator: str, limit: int) -> dict:
    """One GetRecords call; a throttled one is an empty answer with the same iterator."""
    try:
        return client.get_records(ShardIterator=shard_iterator, Limit=limit)
    except ERRORS as exc:
        if error_code(exc) in THROTTLED:
            return {"Records": [], "NextShardIterator": shard_iterator, "Throttled": True}
        raise broker_error("GetRecords", exc) from exc


def expired(exc: BaseException) -> bool:
    """An iterator older than five minutes: get a new one from the last record read."""
    cause = exc.__cause__
    return cause is not None and error_code(cause) == "ExpiredIteratorException"
