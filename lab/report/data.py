"""What the report's charts draw, taken from RunResults: plain lists the page's script reads.

Time is seconds on each run's clock (the events' and series' `t`). A run is one column of
charts; several runs share every chart's axes, so the same broker under two settings (or
one recipe on different brokers) reads side by side.
"""

from collections.abc import Iterable

from lab.capacity.predict import predicted_backlog
from lab.phases import PRODUCING, Phase
from lab.results import RunResult

# Chart id -> (series key in a point, title, unit). Each is drawn per broker.
TIME_CHARTS = {
    "send": ("produce_rate", "send rate (acked)", "msgs/s"),
    "receive": ("consume_rate", "receive rate", "msgs/s"),
    "lag": ("lag", "lag", "messages"),
    "e2e_p50": ("e2e_p50_ms", "end-to-end p50", "ms"),
    "e2e_p99": ("e2e_p99_ms", "end-to-end p99", "ms"),
}
PHASE_MARKS = {
    Phase.WARMUP: "producing",
    Phase.RUNNING: "warm-up over",
    Phase.DRAINING: "draining",
}
MERGE_WITHIN_S = 1.0  # markers of the same thing this close together are drawn as one
PREDICTION_STEP_S = 0.25


def run_data(result: RunResult, label: str) -> dict:
    brokers = [broker_data(result, name) for name in result.brokers]
    return {
        "id": result.run_id,
        "label": label,
        "recipe": result.recipe.get("name", "?"),
        "mode": result.mode,
        "duration": max((b["t_end"] for b in brokers), default=result.duration_s),
        "markers": markers(result),
        "brokers": brokers,
    }


def broker_data(result: RunResult, name: str) -> dict:
    b = result.brokers[name]
    points = [p for p in b.series if isinstance(p, dict) and "t" in p]
    t = [p["t"] for p in points]
    series = {
        chart: [_num(p.get(key)) for p in points] for chart, (key, _, _) in TIME_CHARTS.items()
    }
    series["target"] = [_num(p.get("target_rate")) for p in points]
    summary = b.summary or {}
    data = {
        "name": name,
        "t": t,
        "t_end": t[-1] if t else 0.0,
        "series": series,
        "percentiles": {
            kind: percentiles(summary.get(f"{kind}_latency_ms") or {})
            for kind in ("e2e", "publish")
        },
        "prediction": prediction(result, name),
    }
    return data


def percentiles(lat: dict) -> dict:
    """[[percentile, ms], ...] and whether the file recorded the whole ladder. Files from
    before `percentiles` existed keep p50, p95, p99 and max: those four are drawn."""
    recorded = lat.get("percentiles")
    if isinstance(recorded, list) and recorded:
        pairs = [(float(p), float(v)) for p, v in recorded]
        full = True
    else:
        pairs = [(p, lat[k]) for p, k in ((50, "p50"), (95, "p95"), (99, "p99"), (100, "max"))]
        pairs = [(p, float(v)) for p, v in pairs if isinstance(v, int | float)]
        full = False
    if not lat.get("count"):
        pairs = []
    return {"points": pairs, "count": lat.get("count", 0), "full": full}


def clock_zero(result: RunResult, broker: str) -> float | None:
    """When the broker's producers started: its schedule's zero on the run's clock."""
    for e in result.events:
        if e.broker == broker and e.kind == "phase" and e.message.startswith("producing"):
            return e.t
    for p in result.brokers[broker].series:
        if p.get("phase") in PRODUCING:
            return p["t"]
    return None


def prediction(result: RunResult, broker: str) -> dict | None:
    """The fluid model's backlog for the recipe, on the broker's clock: None when the
    recipe has no processing time to bound the consumers."""
    backlog = predicted_backlog(result.recipe)
    t0 = clock_zero(result, broker)
    if backlog is None or t0 is None:
        return None
    return {
        "t": [round(t0 + t, 3) for t, _ in backlog.points],
        "backlog": [round(q, 3) for _, q in backlog.points],
        "capacity": backlog.capacity,
        "peak": backlog.peak,
    }


def markers(result: RunResult) -> list[dict]:
    """Faults and commands (from the events) and phase changes (from each broker's series),
    merged where several brokers did the same thing within MERGE_WITHIN_S: one line, one
    label ("pause · kafka, redis"), where a label each would be drawn over the others."""
    raw: list[tuple[float, str, str, str | None]] = []
    for e in result.events:
        if e.kind in ("fault", "command"):
            raw.append((e.t, "fault", e.message, e.broker))
    # Without a warm-up, "warm-up over" comes a tick after "producing": not worth a line.
    skip = set() if result.recipe.get("warmup", 1) else {Phase.RUNNING}
    for name, b in result.brokers.items():
        previous = None
        for p in b.series:
            phase = p.get("phase")
            if phase != previous and phase in PHASE_MARKS and phase not in skip:
                raw.append((p["t"], "phase", PHASE_MARKS[phase], name))
            previous = phase
    return _merge(sorted(raw, key=lambda m: m[0]))


def _unnamed(label: str, broker: str | None) -> str:
    """A fault's words without the broker it hit ("pause redis" -> "pause")."""
    return " ".join(w for w in label.split(" ") if w != broker) if broker else label


def _merge(raw: Iterable[tuple[float, str, str, str | None]]) -> list[dict]:
    out: list[dict] = []
    for t, kind, label, broker in raw:
        what = _unnamed(label, broker)
        same = next(
            (
                m
                for m in out
                if m["kind"] == kind and m["what"] == what and t - m["t"] <= MERGE_WITHIN_S
            ),
            None,
        )
        if same is None:
            out.append(
                {
                    "t": t,
                    "kind": kind,
                    "label": label,
                    "what": what,
                    "named": what != label,
                    "brokers": [broker] if broker else [],
                }
            )
        elif broker and broker not in same["brokers"]:
            same["brokers"].append(broker)
    for m in out:
        if m.pop("named") and len(m["brokers"]) > 1:
            names = m["brokers"]
            who = ", ".join(names) if len(names) <= 3 else f"{len(names)} brokers"
            m["label"] = f"{m['what']} · {who}"
        del m["what"]
    return out


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
