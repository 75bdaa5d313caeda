"""The comparison of what the store holds with the truth: a broker's `stream` in results.

view_error     sum over keys of |count in the view - true count|
view           keys exact / over / under, over_count, under_count, sum_error
windows        exact, wrong, late (events late for a window), late_updates,
               wrong_by_late (wrong windows whose whole difference is their late events)
triggers       fired, expected, missed, spurious, duplicated, suppressed, sent, failed,
               latency_ms (event that crossed -> alert acked or command started)
freshness_ms   event time -> view updated, p50 / p99 over the run

In pub-sub each subscriber's summary has its own `stream` (its store against its own
ledger), and the broker's adds them up (combined).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from lab.metrics import new_histogram
from lab.recipes.model import Stream
from lab.stream.truth import Truth, expected_triggers


@dataclass
class StageTotals:
    """Every consumer's StageReports added up, engine side."""

    seen: int = 0
    applied: int = 0
    deduped: int = 0
    late_events: int = 0
    late: dict[tuple[int, int], int] = field(default_factory=dict)
    fired: list[tuple[int, int]] = field(default_factory=list)
    sent: int = 0
    suppressed: int = 0
    failed: int = 0
    error: str = ""
    freshness: HdrHistogram = field(default_factory=new_histogram)
    trigger_latency: HdrHistogram = field(default_factory=new_histogram)


def percentiles(hist: HdrHistogram) -> dict:
    if not hist.get_total_count():
        return {"p50": None, "p99": None, "count": 0}
    return {
        "p50": hist.get_value_at_percentile(50) / 1000,
        "p99": hist.get_value_at_percentile(99) / 1000,
        "count": hist.get_total_count(),
    }


def compare(
    cfg: Stream,
    truth: Truth,
    view: dict[int, tuple[int, int]] | None,
    windows: dict[tuple[int, int], tuple[int, int]] | None,
    totals: StageTotals,
) -> dict:
    """`view` / `windows`: as read from the store at the end (None: not read)."""
    out: dict = {
        "store": cfg.view_store,
        "dedupe": cfg.dedupe,
        "events": {
            "truth": truth.events,
            "seen": totals.seen,
            "applied": totals.applied,
            "deduped": totals.deduped,
            "untimed": truth.untimed,
        },
        "view_error": None,
        "view": None,
        "windows": None,
        "triggers": None,
        "freshness_ms": percentiles(totals.freshness),
    }
    if cfg.view and view is not None:
        out["view"] = _view(truth, view)
        out["view_error"] = out["view"]["over_count"] + out["view"]["under_count"]
    if cfg.windows.kind and windows is not None:
        out["windows"] = _windows(truth, windows, totals)
    if cfg.triggers.action:
        out["triggers"] = _triggers(cfg, truth, totals)
    return out


def combined(parts: list[dict], freshness: HdrHistogram, latency: HdrHistogram) -> dict:
    """Several subscriptions' comparisons as the broker's: every count added up (unknown
    where one of them is), the percentiles those of the merged histograms."""
    if len(parts) == 1:
        return parts[0]
    out = _added(parts)
    out["freshness_ms"] = percentiles(freshness)
    if out["triggers"] is not None:
        out["triggers"]["latency_ms"] = percentiles(latency)
    return out


def _added(values: list) -> object:
    first = values[0]
    if any(v is None for v in values):
        return None
    if isinstance(first, dict):
        return {k: _added([v[k] for v in values]) for k in first}
    if isinstance(first, bool) or not isinstance(first, int | float):
        return first  # the store's name, dedupe: the same for every subscription
    return sum(values)


def _view(truth: Truth, view: dict[int, tuple[int, int]]) -> dict:
    exact = over = under = over_count = under_count = sum_error = 0
    for key in truth.view.keys() | view.keys():
        t_count, t_sum = truth.view.get(key, (0, 0))
        v_count, v_sum = view.get(key, (0, 0))
        diff = v_count - t_count
        sum_error += abs(v_sum - t_sum)
        if diff > 0:
            over, over_count = over + 1, over_count + diff
        elif diff < 0:
            under, under_count = under + 1, under_count - diff
        elif v_sum == t_sum:
            exact += 1
    return {
        "keys": len(truth.view.keys() | view.keys()),
        "exact": exact,
        "over": over,
        "under": under,
        "over_count": over_count,
        "under_count": under_count,
        "sum_error": sum_error,
    }


def _windows(
    truth: Truth, observed: dict[tuple[int, int], tuple[int, int]], totals: StageTotals
) -> dict:
    exact = wrong = by_late = 0
    for w in truth.windows.keys() | observed.keys():
        t = tuple(truth.windows.get(w, (0, 0)))
        o = observed.get(w, (0, 0))
        if t == o:
            exact += 1
            continue
        wrong += 1
        if t[0] - o[0] == totals.late.get(w, 0) > 0:
            by_late += 1
    return {
        "exact": exact,
        "wrong": wrong,
        "late": totals.late_events,
        "late_updates": sum(totals.late.values()),
        "wrong_by_late": by_late,
    }


def _triggers(cfg: Stream, truth: Truth, totals: StageTotals) -> dict:
    t = cfg.triggers
    expected = expected_triggers(truth, t.statistic, t.threshold)
    fired = set(totals.fired)
    return {
        "fired": len(totals.fired),
        "expected": len(expected),
        "missed": len(expected - fired),
        "spurious": len(fired - expected),
        "duplicated": len(totals.fired) - len(fired),
        "sent": totals.sent,
        "suppressed": totals.suppressed,
        "failed": totals.failed,
        "latency_ms": percentiles(totals.trigger_latency),
    }


def _count(value: object) -> str:
    return "-" if value is None else f"{value:,}"


def _row(pick: Callable[[dict], str]) -> Callable[[dict], str]:
    def fmt(summary: dict) -> str:
        stream = summary.get("stream")
        return "-" if not stream else pick(stream)

    return fmt


def _ms(lat: dict) -> str:
    return "-" if lat["p50"] is None else f"{lat['p50']:,.1f} / {lat['p99']:,.1f}"


def _windows_row(s: dict) -> str:
    w = s["windows"]
    return "-" if w is None else f"{w['exact']:,} / {w['wrong']:,} / {w['late']:,}"


def _triggers_row(s: dict) -> str:
    t = s["triggers"]
    if t is None:
        return "-"
    return (
        f"{t['fired']:,} of {t['expected']:,} (missed {t['missed']:,}, "
        f"spurious {t['spurious']:,}, dup {t['duplicated']:,})"
    )


def _latency_row(s: dict) -> str:
    t = s["triggers"]
    return "-" if t is None else _ms(t["latency_ms"])


# Rows of the comparison tables (lab run, Markdown, HTML) for runs with a [stream] stage.
STREAM_ROWS: list[tuple[str, Callable[[dict], str]]] = [
    ("view error (count)", _row(lambda s: _count(s["view_error"]))),
    ("windows exact / wrong / late", _row(_windows_row)),
    ("triggers fired of expected", _row(_triggers_row)),
    ("view freshness p50 / p99 (ms)", _row(lambda s: _ms(s["freshness_ms"]))),
    ("trigger latency p50 / p99 (ms)", _row(_latency_row)),
]


def alarming(label: str, summary: dict) -> bool:
    stream = summary.get("stream") or {}
    if label.startswith("view error"):
        return bool(stream.get("view_error"))
    return False
