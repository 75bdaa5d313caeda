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


def from_summary(stream: dict | None) -> StreamFigures | None:
    """The final figures of a results file's `stream` (for replays)."""
    if not stream:
        return None
    w, t = stream.get("windows") or {}, stream.get("triggers") or {}
    events, fresh = stream.get("events") or {}, stream.get("freshness_ms") or {}
    return StreamFigures(
        store=stream.get("store", "?"),
        dedupe=bool(stream.get("dedupe")),
        applied=events.get("applied", 0),
        deduped=events.get("deduped", 0),
        late=w.get("late", 0),
        fired=t.get("fired", 0),
        suppressed=t.get("suppressed", 0),
        freshness_p50_ms=fresh.get("p50"),
        freshness_p99_ms=fresh.get("p99"),
        view_error=stream.get("view_error"),
        final=True,
        expected=t.get("expected"),
        missed=t.get("missed"),
        spurious=t.get("spurious"),
        duplicated=t.get("duplicated"),
        windows_exact=w.get("exact"),
        windows_wrong=w.get("wrong"),
    )
