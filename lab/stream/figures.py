"""The stream stage's figures in a broker's Snapshot (the TUI's features panel).

While the run goes on, the view error is the over-count so far: events applied to the view
beyond the distinct messages delivered (each redelivery a naive view counted again). At
the end (`final`) it is the comparison of the store with the truth, and the window and
trigger comparisons are filled in.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamFigures:
    store: str
    dedupe: bool
    applied: int = 0  # events that updated the store
    deduped: int = 0  # redeliveries the store recognised and skipped
    late: int = 0  # events late for a window
    fired: int = 0
    suppressed: int = 0  # trigger actions held back by the rate limit
    freshness_p50_ms: float | None = None  # event time -> view updated, last interval
    freshness_p99_ms: float | None = None
    view_error: int | None = None
    final: bool = False
    expected: int | None = None  # triggers the truth says should fire
    missed: int | None = None
    spurious: int | None = None
    duplicated: int | None = None
    windows_exact: int | None = None
    windows_wrong: int | None = None
