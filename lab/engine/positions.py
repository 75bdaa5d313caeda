"""Where acked messages sit in brokers whose retention deletes by position, and which
of them a retention floor has passed."""

from array import array

from lab.ledger import SeqCollector
from lab.messages import unpack


def collect(packed: array) -> SeqCollector:
    collector = SeqCollector()
    for value in packed:
        collector.add(*unpack(value))
    return collector


class PositionIndex:
    """Where each acked message sits in a position-based broker (Kafka offset, Redis entry
    id), kept only for runs with retention, until retention passes it.

    Positions arrive in blocks (one per producer report), each nearly in order; a block
    wholly below a floor is dropped in one go, one wholly above it is not even looked at,
    so probes cost little however long the run."""

    def __init__(self) -> None:
        # partition -> blocks of (lowest position, highest position, (position, id) pairs)
        self._blocks: dict[int, list[tuple[int, int, array]]] = {}

    def add(self, raw: bytes) -> None:
        triples = array("q")
        triples.frombytes(raw)
        by_partition: dict[int, array] = {}
        for i in range(0, len(triples), 3):
            by_partition.setdefault(triples[i], array("q")).extend(triples[i + 1 : i + 3])
        for partition, pairs in by_partition.items():
            positions = pairs[::2]
            block = (min(positions), max(positions), pairs)
            self._blocks.setdefault(partition, []).append(block)

    def below(self, floors: dict[int, int]) -> array:
        """Ids of messages at positions below each partition's floor, each given once."""
        out = array("Q")
        for partition, floor in floors.items():
            kept = []
            for low, high, pairs in self._blocks.get(partition, []):
                if low >= floor:
                    kept.append((low, high, pairs))
                elif high < floor:
                    out.extend(array("Q", pairs[1::2]))
                else:
                    rest = array("q")
                    for j in range(0, len(pairs), 2):
                        if pairs[j] < floor:
                            out.append(pairs[j + 1])
                        else:
                            rest.extend(pairs[j : j + 2])
                    kept.append((min(rest[::2]), high, rest))
            self._blocks[partition] = kept
        return out
