"""The stream stage's figures in a broker's Snapshot (the TUI's features panel).

While the run goes on, the view error is the over-count so far: events applied to the view
beyond the distinct messages delivered (each redelivery a naive view counted again). The
windows and triggers are compared for the windows whose truth is known and that no
consumer can change any more (lab/stream/live.py): those ending by `windows_to_s`. At
the end (`final`) everything is the comparison of the store with the truth.

In pub-sub each subscription has its figures (SubscriberSnapshot.stream), and the
broker's are their sum, as its ledger is.
"""

from dataclasses import dataclass, fields


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
    # Event that crossed -> alert acked or command started: the last 2 s live (alerts come
    # in bursts when windows fill), the whole run at the end.
    trigger_p50_ms: float | None = None
    trigger_p99_ms: float | None = None
    view_error: int | None = None
    final: bool = False
    windows_to_s: float | None = None  # live: the windows ending by then are compared
    expected: int | None = None  # triggers the truth says should fire
    missed: int | None = None
    spurious: int | None = None
    duplicated: int | None = None
    windows_exact: int | None = None
    windows_wrong: int | None = None


_LATENCIES = {"freshness_p50_ms", "freshness_p99_ms", "trigger_p50_ms", "trigger_p99_ms"}


def summed(parts: list[StreamFigures], latencies: dict[str, float | None]) -> StreamFigures:
    """Several subscriptions' figures as the broker's: counts added up (unknown if one is),
    the live comparison as far as all of them got, `latencies` from merged histograms."""
    if len(parts) == 1:
        return parts[0]
    out: dict = {"store": parts[0].store, "dedupe": parts[0].dedupe, **latencies}
    out["final"] = all(p.final for p in parts)
    known = [p.windows_to_s for p in parts if p.windows_to_s is not None]
    out["windows_to_s"] = min(known) if len(known) == len(parts) else None
    for f in fields(StreamFigures):
        if f.name in out or f.name in _LATENCIES:
            continue
        values = [getattr(p, f.name) for p in parts]
        out[f.name] = None if None in values else sum(values)
    return StreamFigures(**out)


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
        **compared(stream),
    )


def compared(stream: dict) -> dict:
    """The StreamFigures fields of a final comparison with the truth (a summary's
    `stream`): the view's error, the windows and the triggers."""
    w, t = stream.get("windows") or {}, stream.get("triggers") or {}
    latency = t.get("latency_ms") or {}
    return {
        "trigger_p50_ms": latency.get("p50"),
        "trigger_p99_ms": latency.get("p99"),
        "view_error": stream.get("view_error"),
        "final": True,
        "expected": t.get("expected"),
        "missed": t.get("missed"),
        "spurious": t.get("spurious"),
        "duplicated": t.get("duplicated"),
        "windows_exact": w.get("exact"),
        "windows_wrong": w.get("wrong"),
    }
