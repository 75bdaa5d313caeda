"""The exact account of every message: sequence numbers per producer, as chunked bitmaps.

Workers collect the sequences they saw in an interval in a `SeqCollector` (one bytearray
chunk per 65,536 sequences, O(1) per message) and send only the touched chunks. The
engine folds them into a `Ledger`, where chunks are Python ints so unions, overlaps and
differences are single C-speed operations.

For every acked message the ledger says: delivered (at least once), dead-lettered,
dropped by retention, still in flight, or lost; duplicates are counted on top.

    acked == delivered + dead_lettered + retention_dropped + in_flight + lost

holds by construction at any time; `lost` is only non-zero once a run has drained, and
is bounded by what the broker says it still holds (`depth`).
"""

from collections.abc import Iterator
from dataclasses import asdict, dataclass

CHUNK_SHIFT = 16
CHUNK_SEQS = 1 << CHUNK_SHIFT
CHUNK_MASK = CHUNK_SEQS - 1
CHUNK_BYTES = CHUNK_SEQS // 8

Key = tuple[int, int]  # (producer id, chunk index)
Export = dict[Key, bytes]


class SeqCollector:
    """Sequences seen by one worker during one reporting interval."""

    __slots__ = ("_chunks", "repeats")

    def __init__(self) -> None:
        self._chunks: dict[Key, bytearray] = {}
        self.repeats = 0  # seen twice within this interval

    def add(self, producer: int, seq: int) -> None:
        key = (producer, seq >> CHUNK_SHIFT)
        chunk = self._chunks.get(key)
        if chunk is None:
            chunk = self._chunks[key] = bytearray(CHUNK_BYTES)
        i = seq & CHUNK_MASK
        bit = 1 << (i & 7)
        if chunk[i >> 3] & bit:
            self.repeats += 1
        else:
            chunk[i >> 3] |= bit

    def add_range(self, producer: int, first: int, count: int) -> None:
        for seq in range(first, first + count):
            self.add(producer, seq)

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def export(self) -> Export:
        return {key: bytes(chunk) for key, chunk in self._chunks.items()}


class SeqSet:
    """A set of (producer, seq), merged from collector exports."""

    __slots__ = ("_chunks",)

    def __init__(self) -> None:
        self._chunks: dict[Key, int] = {}

    def merge(self, export: Export) -> int:
        """Add the exported sequences; return how many were already present."""
        overlap = 0
        for key, raw in export.items():
            bits = int.from_bytes(raw, "little")
            old = self._chunks.get(key, 0)
            overlap += (old & bits).bit_count()
            self._chunks[key] = old | bits
        return overlap

    def add(self, producer: int, seq: int) -> bool:
        """Add one sequence; False if it was already present."""
        key = (producer, seq >> CHUNK_SHIFT)
        bit = 1 << (seq & CHUNK_MASK)
        old = self._chunks.get(key, 0)
        self._chunks[key] = old | bit
        return not old & bit

    def __contains__(self, item: tuple[int, int]) -> bool:
        producer, seq = item
        return bool(self._chunks.get((producer, seq >> CHUNK_SHIFT), 0) >> (seq & CHUNK_MASK) & 1)

    def __len__(self) -> int:
        return sum(bits.bit_count() for bits in self._chunks.values())

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """Every (producer, seq), chunk by chunk: for tests and checks, not hot paths."""
        for (producer, chunk), bits in self._chunks.items():
            base = chunk << CHUNK_SHIFT
            rest = bits
            while rest:
                low = rest & -rest
                yield producer, base + low.bit_length() - 1
                rest ^= low

    def chunk(self, key: Key) -> int:
        return self._chunks.get(key, 0)

    def keys(self) -> set[Key]:
        return set(self._chunks)

    def missing_ranges(self, producer: int, upto: int) -> list[tuple[int, int]]:
        """[first, last] runs of sequences below `upto` that are NOT in the set."""
        runs, start = [], None
        for seq in range(upto):
            present = (producer, seq) in self
            if not present and start is None:
                start = seq
            elif present and start is not None:
                runs.append((start, seq - 1))
                start = None
        if start is not None:
            runs.append((start, upto - 1))
        return runs


@dataclass(frozen=True)
class LedgerCounts:
    produced: int = 0  # sends attempted
    acked: int = 0  # confirmed by the broker
    delivered: int = 0  # acked and processed by a consumer at least once
    duplicates: int = 0  # deliveries beyond the first
    dead_lettered: int = 0
    retention_dropped: int = 0
    in_flight: int = 0  # acked, not yet accounted for, and the broker may still hold it
    lost: int = 0  # acked, gone from the broker, never delivered
    unacked_delivered: int = 0  # delivered although the producer never saw an ack

    def adds_up(self) -> bool:
        return self.acked == (
            self.delivered
            + self.dead_lettered
            + self.retention_dropped
            + self.in_flight
            + self.lost
        )

    def to_dict(self) -> dict:
        return asdict(self)


class Ledger:
    """Per broker: what was acked, delivered, dead-lettered and dropped, by identity."""

    def __init__(self) -> None:
        self.acked = SeqSet()
        self.delivered = SeqSet()
        self.dead_lettered = SeqSet()
        self.retention_dropped = SeqSet()
        self.produced = 0
        self.duplicates = 0
        self.problems: list[str] = []

    def record_acked(self, export: Export, produced: int) -> None:
        self.produced += produced
        again = self.acked.merge(export)
        if again:
            self.problems.append(f"{again} messages were acked twice by the broker")

    def record_delivered(self, export: Export, repeats: int) -> None:
        self.duplicates += repeats + self.delivered.merge(export)

    def record_dead_lettered(self, export: Export) -> None:
        self.dead_lettered.merge(export)

    def record_retention_dropped(self, export: Export) -> None:
        self.retention_dropped.merge(export)

    def counts(self, depth: int | None = None, final: bool = False) -> LedgerCounts:
        """Classify every acked message. While running, everything unaccounted for is in
        flight; at the end, only as many as the broker says it still holds (`depth`)."""
        delivered = dead = dropped = rest = unacked = 0
        keys = self.acked.keys() | self.delivered.keys()
        for key in keys:
            a = self.acked.chunk(key)
            d = self.delivered.chunk(key)
            unacked += (d & ~a).bit_count()
            d &= a
            x = self.dead_lettered.chunk(key) & a & ~d
            r = self.retention_dropped.chunk(key) & a & ~d & ~x
            delivered += d.bit_count()
            dead += x.bit_count()
            dropped += r.bit_count()
            rest += (a & ~d & ~x & ~r).bit_count()
        # While running, or when the broker could not be asked at the end, nothing that is
        # unaccounted for is called lost: its fate is unknown.
        in_flight = min(rest, max(depth, 0)) if final and depth is not None else rest
        return LedgerCounts(
            produced=self.produced,
            acked=len(self.acked),
            delivered=delivered,
            duplicates=self.duplicates,
            dead_lettered=dead,
            retention_dropped=dropped,
            in_flight=in_flight,
            lost=rest - in_flight,
            unacked_delivered=unacked,
        )
