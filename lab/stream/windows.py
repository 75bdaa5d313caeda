"""Tumbling and hopping windows over event time, in whole milliseconds of the run's clock.

Event time is the message's intended send time, relative to the run's clock zero (t0), so
window [10 s, 20 s) is the same window for every consumer, the engine and the reader of
the results. Windows are half-open: [start, start + size).

Lateness is judged by the same clock: the watermark is "now - allowed_lateness", and a
window is closed once the watermark has passed its end. An event arriving for a closed
window is late: counted per window, never added. With no delay longer than the lateness
bound, nothing is late, whatever order the events come in; a broker pause longer than
it makes exactly the events it held past the bound late.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from lab.recipes.model import Windows

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class WindowSpec:
    size_ms: int
    hop_ms: int  # == size_ms for tumbling windows
    lateness_ms: int

    @classmethod
    def of(cls, cfg: Windows) -> "WindowSpec | None":
        """None when the recipe has no windows."""
        if not cfg.kind:
            return None
        size = max(1, round(cfg.size * 1000))
        hop = size if cfg.kind == "tumbling" else max(1, round(cfg.hop * 1000))
        return cls(size, hop, round(cfg.allowed_lateness * 1000))

    def starts(self, t_ms: int) -> range:
        """Starts of the windows holding event time t_ms: every multiple of hop in
        (t - size, t]. Floor division keeps this right for times before t0 too."""
        first = (t_ms - self.size_ms) // self.hop_ms + 1
        last = t_ms // self.hop_ms
        return range(first * self.hop_ms, last * self.hop_ms + 1, self.hop_ms)

    def closed(self, start_ms: int, now_ms: int) -> bool:
        """Whether the watermark (now - allowed_lateness) has passed the window's end."""
        return now_ms - self.lateness_ms >= start_ms + self.size_ms


def rel_ms(ns: int, t0_ns: int) -> int:
    """Nanoseconds of the monotonic clock as whole milliseconds of the run's clock."""
    return (ns - t0_ns) // NS_PER_MS


Aggregates = dict[tuple[int, int], list[int]]  # (window start ms, key) -> [count, sum]


def add(into: Aggregates, start: int, key: int, value: int) -> None:
    cell = into.get((start, key))
    if cell is None:
        into[(start, key)] = [1, value]
    else:
        cell[0] += 1
        cell[1] += value


class WindowOperator:
    """The windowing of one stream in memory, in arrival order: the reference the stores'
    updates follow (the truth uses it with nothing late)."""

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self.windows: Aggregates = {}
        self.late: Aggregates = {}  # (start, key) -> [late events, their sum]
        self.late_events = 0  # events late for at least one of their windows

    def add(self, key: int, value: int, t_ms: int, now_ms: int | None = None) -> None:
        """One event; `now_ms`: when it arrived (None: in time, as for the truth)."""
        late_here = False
        for start in self.spec.starts(t_ms):
            if now_ms is not None and self.spec.closed(start, now_ms):
                add(self.late, start, key, value)
                late_here = True
            else:
                add(self.windows, start, key, value)
        self.late_events += late_here

    def add_all(self, events: Iterable[tuple[int, int, int, int | None]]) -> "WindowOperator":
        for key, value, t_ms, now_ms in events:
            self.add(key, value, t_ms, now_ms)
        return self


def statistic(cell: list[int] | tuple[int, int], name: str) -> int:
    """A window's count or sum."""
    return cell[0] if name == "count" else cell[1]
