"""The comparison with the truth while the run goes on, for the windows it can be made for.

A window's truth is known once every producer's resolved mark (lab/stream/acks.py) has
passed its end: no message with an event time inside it can still be acked. What a store
holds for it is final once every consumer of that store has posted a report made after
the window closed (its end + allowed lateness): a batch judged before then is in the
store by then, and every later batch finds the window closed and counts its events late.
With both known, the window and its triggers are compared as at the end, once: the final
comparison agrees with every live one, and only adds the windows that closed since.

Not done with poison messages: the truth leaves dead letters out, and a poison message
may be dead-lettered long after its window closed.
"""

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from lab.recipes.model import Stream
from lab.stream.events import EventSource
from lab.stream.windows import WindowSpec, rel_ms, statistic

MAX_WINDOWS = 200  # compared in one go, so one store read stays short


class LiveTruth:
    """The truth's windows of one broker, built as acked event times arrive (every
    subscription is owed the same messages), and forgotten once every subscription has
    compared them."""

    def __init__(self, cfg: Stream) -> None:
        self.source = EventSource(cfg)
        spec = WindowSpec.of(cfg.windows)
        assert spec is not None
        self.spec = spec
        self.cells: dict[int, dict[int, list[int]]] = {}  # start -> key -> [count, sum]

    def add(self, producer: int, pairs: array, t0_ns: int) -> None:
        """(seq, intended ns) pairs of acked messages."""
        event, starts, cells = self.source.event, self.spec.starts, self.cells
        for i in range(0, len(pairs), 2):
            key, value = event(producer, pairs[i])
            for start in starts(rel_ms(pairs[i + 1], t0_ns)):
                window = cells.get(start)
                if window is None:
                    window = cells[start] = {}
                cell = window.get(key)
                if cell is None:
                    window[key] = [1, value]
                else:
                    cell[0] += 1
                    cell[1] += value

    def forget_below(self, start: int) -> None:
        for old in [s for s in self.cells if s < start]:
            del self.cells[old]


def horizon(clocks: Iterable[int | None]) -> int | None:
    """The earliest of some run-clock marks (ms); None when one of them is unknown.
    No marks at all: no limit."""
    low = float("inf")
    for clock in clocks:
        if clock is None:
            return None
        low = min(low, clock)
    return low  # type: ignore[return-value]


@dataclass
class LiveTally:
    """One store's windows and triggers compared so far: every window starting before
    `next_start`."""

    next_start: int
    exact: int = 0
    wrong: int = 0
    expected: int = 0
    missed: int = 0
    spurious: int = 0
    duplicated: int = 0
    fired: dict[int, list[int]] = field(default_factory=dict)  # start -> keys, not compared yet

    def on_fired(self, fired: list[tuple[int, int]]) -> None:
        for start, key in fired:
            self.fired.setdefault(start, []).append(key)

    def due(
        self, spec: WindowSpec, truth_ms: int | None, store_ms: int | None, now_ms: int
    ) -> list[int]:
        """The starts of the windows that can be compared now, oldest first."""
        if truth_ms is None or store_ms is None:
            return []
        end_by = min(truth_ms, store_ms - spec.lateness_ms)
        out, start = [], self.next_start
        # No event is later than now: past it there are only empty windows.
        while start + spec.size_ms <= end_by and start <= now_ms and len(out) < MAX_WINDOWS:
            out.append(start)
            start += spec.hop_ms
        return out

    def compare(
        self,
        truth: LiveTruth,
        starts: list[int],
        observed: dict[tuple[int, int], tuple[int, int]],
        trigger: tuple[str, float] | None,
    ) -> None:
        """`observed`: the store's cells of these windows; `trigger`: (statistic,
        threshold), or None without triggers."""
        stored: dict[int, dict[int, tuple[int, int]]] = {}
        for (start, key), cell in observed.items():
            stored.setdefault(start, {})[key] = cell
        for start in starts:
            t_cells, o_cells = truth.cells.get(start, {}), stored.get(start, {})
            for key in t_cells.keys() | o_cells.keys():
                if tuple(t_cells.get(key, (0, 0))) == tuple(o_cells.get(key, (0, 0))):
                    self.exact += 1
                else:
                    self.wrong += 1
            fired = self.fired.pop(start, [])
            if trigger is None:
                continue
            name, threshold = trigger
            expected = {k for k, cell in t_cells.items() if statistic(cell, name) > threshold}
            once = set(fired)
            self.expected += len(expected)
            self.missed += len(expected - once)
            self.spurious += len(once - expected)
            self.duplicated += len(fired) - len(once)
        if starts:
            self.next_start = starts[-1] + truth.spec.hop_ms
