"""How the probe counts what a stream holds: Kinesis says how far behind a reader is in
milliseconds (MillisBehindLatest), never in records. So the probe reads each shard once,
from the trim horizon on, keeping only each record's order key, and counts the records
after a checkpoint (the lag, the dead letters not yet redriven) and below the trim
horizon (what retention deleted)."""

import bisect
import time
from array import array

from lab.brokers.contract import BrokerError
from lab.brokers.kinesis import streams
from lab.brokers.kinesis.client import Client, order_key

READ_LIMIT = 10_000  # records per GetRecords call, Kinesis's largest
# While running, small calls: kinesalite answers on one thread, and one 10,000-record
# answer (10 MB of JSON at 1 KiB a record) stalls every client's calls behind it.
PROBE_LIMIT = 1000
FINAL_READS = 1000  # calls per shard of a final probe: it must reach the end
# Calls on one shard to find its oldest record: kinesalite deletes expired records only as
# a GetRecords call passes them, and answers such a call with no records.
FLOOR_READS = 20
FLOOR_LIMIT = 1000


class ShardTail:
    def __init__(self, stream: str, shard: str, keep_all: bool) -> None:
        self.stream = stream
        self.shard = shard
        # Every key from the trim horizon on when retention may delete records (to count
        # them); otherwise only those after the shard's checkpoint.
        self.keep_all = keep_all
        self.keys: array | list = array("q")
        self.last: str | None = None  # sequence number of the last record read
        self._iterator: str | None = None
        self.caught_up = False

    def read(self, client: Client, calls: int, limit: int = READ_LIMIT, until: float = 0) -> None:
        """Read on, at most `calls` GetRecords calls of `limit` records, until the end of
        the shard or the monotonic time `until` (0: no time limit)."""
        self.caught_up = False
        for _ in range(calls):
            if until and time.monotonic() > until:
                return
            if self._iterator is None:
                self._iterator = streams.iterator(client, self.stream, self.shard, self.last)
            try:
                answer = streams.read(client, self._iterator, limit)
            except BrokerError as exc:
                if not streams.expired(exc):
                    raise
                self._iterator = None
                continue
            records = answer["Records"]
            for record in records:
                self._add(record["SequenceNumber"])
            self._iterator = answer.get("NextShardIterator")
            if answer.get("Throttled"):
                time.sleep(0.2)
                continue
            behind = answer.get("MillisBehindLatest", 0)
            if self._iterator is None or (len(records) < limit and behind == 0):
                self.caught_up = True
                return

    def _add(self, sequence: str) -> None:
        key = order_key(sequence)
        if isinstance(self.keys, array) and key >= 1 << 63:
            self.keys = list(self.keys)
        self.keys.append(key)
        self.last = sequence

    def after(self, sequence: str | None) -> int:
        """Records read so far that come after this sequence number (all, for None)."""
        if sequence is None:
            return len(self.keys)
        return len(self.keys) - bisect.bisect_right(self.keys, order_key(sequence))

    def below(self, floor: int) -> int:
        """Records read so far whose key is below the floor."""
        return bisect.bisect_left(self.keys, floor)

    def forget_through(self, sequence: str | None) -> None:
        """Drop the keys up to this checkpoint: they will never be counted again."""
        if sequence is None or self.keep_all:
            return
        cut = bisect.bisect_right(self.keys, order_key(sequence))
        if cut:
            del self.keys[:cut]

    def floor(self, client: Client) -> int | None:
        """The order key of the oldest record the shard still holds (its trim horizon);
        past the last record read when it holds none; None when it never held any, or
        when that is not known yet."""
        if self.last is None:
            return None
        shard_iterator = streams.iterator(client, self.stream, self.shard, None)
        for _ in range(FLOOR_READS):
            answer = streams.read(client, shard_iterator, FLOOR_LIMIT)
            if answer["Records"]:
                return order_key(answer["Records"][0]["SequenceNumber"])
            shard_iterator = answer.get("NextShardIterator")
            if shard_iterator is None:
                break
        # Nothing held as far as these reads went: all of it expired, if this tail has
        # read to the end; otherwise the next probe goes on from where these stopped.
        return order_key(self.last) + 1 if self.caught_up else None
