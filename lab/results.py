"""A run's results: what ran, where, and what happened, as lossless re-loadable JSON."""

import dataclasses
import json
import math
import os
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from hdrh.histogram import HdrHistogram

from lab import __version__, results_schema
from lab.errors import LabError
from lab.ledger import LedgerCounts
from lab.metrics import Event, Latency
from lab.phases import Phase
from lab.recipes import Recipe
from lab.stream import summary as stream_summary

SCHEMA = 1
RESULTS_MODE = 0o644


@dataclass
class BrokerResult:
    broker: str
    version: str | None
    client: str
    settings: dict[str, str]
    summary: dict
    series: list[dict] = field(default_factory=list)
    per_second: dict[str, list[int]] = field(default_factory=dict)  # sent, acked, processed
    problems: list[str] = field(default_factory=list)
    # The cloud service a local emulator stood in for: its behaviour, not its speed.
    emulates: str | None = None
    # The durability settings as read back from the broker, at the start, after each
    # restart and at the end: [{"when": "start", "t": 1.2, "settings": {...}}, ...].
    settings_read: list[dict] = field(default_factory=list)


@dataclass
class RunResult:
    run_id: str
    recipe: dict
    mode: str
    started_at: str  # ISO 8601, UTC
    duration_s: float
    environment: dict
    brokers: dict[str, BrokerResult]
    events: list[Event] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    schema: int = SCHEMA

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunResult":
        data = dict(data)
        data["brokers"] = {k: BrokerResult(**v) for k, v in data["brokers"].items()}
        data["events"] = [Event(**e) for e in data.get("events", [])]
        return cls(**data)

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.run_id}.json"
        # A temporary file of its own, then an atomic rename: a reader never sees half a
        # file, and two writers of the same run (a UI saving while the run ends) both win.
        with tempfile.NamedTemporaryFile("w", dir=out_dir, suffix=".tmp", delete=False) as tmp:
            tmp.write(json.dumps(self.to_dict(), indent=1))
        # Readable by all, like the Markdown and HTML exports: results are for sharing and
        # hold no secret (every URL in them is redacted). NamedTemporaryFile makes 0600.
        os.chmod(tmp.name, RESULTS_MODE)
        Path(tmp.name).replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> "RunResult":
        """A results file, or one LabError that names the file and what is wrong with it."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise LabError(f"{path}: no such results file (lab run writes them)") from None
        except IsADirectoryError:
            raise LabError(
                f"{path} is a directory: give a results file, e.g. {path}/RUN.json"
            ) from None
        except UnicodeDecodeError:
            raise LabError(f"{path} is not a text file: give a results JSON file") from None
        except OSError as exc:
            raise LabError(f"{path} cannot be read: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LabError(
                f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
            ) from None
        wrong = results_schema.problem(data)
        if wrong:
            raise LabError(f"{path} is not a Broker Lab results file: {wrong}")
        return cls.from_dict(data)


# The percentiles a latency summary records for a percentile plot, HdrHistogram-style: the
# nines a run measured often enough to tell apart (1 / (1 - p) samples at least), then 100.
PERCENTILE_LADDER = (10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999)


def latency_summary(lat: Latency | HdrHistogram) -> dict:
    """p50, p95, p99, max and count in ms, and `percentiles`: [[percentile, ms], ...] up to
    [100, max]. Given the histogram, the whole ladder; given only a Latency, the four
    percentiles it knows."""
    if isinstance(lat, HdrHistogram):
        hist, lat = lat, Latency.of(lat)
        ladder = [p for p in PERCENTILE_LADDER if 1 / (1 - p / 100) <= lat.count]
        percentiles = [[p, hist.get_value_at_percentile(p) / 1000] for p in ladder]
    else:
        percentiles = [[50, lat.p50], [95, lat.p95], [99, lat.p99]]
    if lat.count:
        percentiles.append([100, lat.max])
    else:
        percentiles = []
    return {
        "p50": lat.p50,
        "p95": lat.p95,
        "p99": lat.p99,
        "max": lat.max,
        "count": lat.count,
        "percentiles": percentiles,
    }


def measured_rate(per_second: list[int], recipe: Recipe, ran: float) -> float | None:
    """Messages per second over the whole seconds between warm-up and the end of the
    schedule, or of what ran of it (`ran` seconds: a run stopped early). None: not one
    whole second was measured."""
    first, last = math.ceil(recipe.warmup), int(min(recipe.duration, ran))
    if last <= first:
        return None
    return sum(per_second[first:last]) / (last - first)


def summary(
    counts: LedgerCounts,
    series: list[dict],
    per_second: dict[str, list[int]],
    recipe: Recipe,
    publish: Latency | HdrHistogram,
    e2e: Latency | HdrHistogram,
    extra: dict[str, int],
    ran: float,
) -> dict:
    """The per-broker summary: ledger counts, rates and latencies after warm-up, and the
    engine's own counters (`extra`: failed sends, errors, poison acked, ...). `ran`: the
    seconds the producers' schedule ran (less than the recipe's after a stop)."""
    running = [s for s in series if s["phase"] == Phase.RUNNING]
    target = sum(s["target_rate"] for s in running) / len(running) if running else None
    lags = [s["lag"] for s in series if s["lag"] is not None]
    return {
        **counts.to_dict(),
        **extra,
        "target_rate": target,
        # Exact: acked (processed) messages counted per second of the run clock, over the
        # whole seconds from the end of warm-up to the end of the schedule.
        "produce_rate": measured_rate(per_second["acked"], recipe, ran),
        "consume_rate": measured_rate(per_second["processed"], recipe, ran),
        "publish_latency_ms": latency_summary(publish),
        "e2e_latency_ms": latency_summary(e2e),
        "max_lag": max(lags, default=0),
        "adds_up": counts.adds_up(),
    }


def environment(
    runtime: str, broker_versions: dict[str, str | None], clients: dict[str, str]
) -> dict:
    return {
        "lab_version": __version__,
        "runtime": runtime,
        "brokers": broker_versions,
        "clients": clients,
        "python": platform.python_version(),
        "os": platform.platform(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
    }


def _pair(lat: dict) -> str:
    if not lat["count"]:
        return "-"  # nothing was measured after warm-up
    return f"{lat['p50']:,.1f} / {lat['p99']:,.1f} / {lat['max']:,.1f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _receives(s: dict) -> str:
    """Receive calls per delivered message, and how many came back empty: the cost of
    polling, which long polling keeps near one call per batch."""
    calls = s.get("receive_calls")
    if calls is None:  # results from before the lab counted them
        return "-"
    per = f"{calls / s['delivered']:,.2f}" if s["delivered"] else "-"
    return f"{calls:,} ({per} per msg, {s.get('empty_receives', 0):,} empty)"


# The rows of a run's comparison, in the order people read them; each formats one
# broker's summary. `lab run`'s summary table and the Markdown export both use them.
SUMMARY_ROWS: list[tuple[str, Callable[[dict], str]]] = [
    ("send rate (msgs/s)", lambda s: f"{_rate(s['produce_rate'])} of {_rate(s['target_rate'])}"),
    ("receive rate (msgs/s)", lambda s: _rate(s["consume_rate"])),
    ("publish p50 / p99 / max (ms)", lambda s: _pair(s["publish_latency_ms"])),
    ("end-to-end p50 / p99 / max (ms)", lambda s: _pair(s["e2e_latency_ms"])),
    ("max lag", lambda s: f"{s['max_lag']:,}"),
    ("receive calls", _receives),
    ("produced", lambda s: f"{s['produced']:,}"),
    ("acked", lambda s: f"{s['acked']:,}"),
    ("delivered", lambda s: f"{s['delivered']:,}"),
    ("duplicates", lambda s: f"{s['duplicates']:,}"),
    ("dead-lettered", lambda s: f"{s['dead_lettered']:,}"),
    ("retention-dropped", lambda s: f"{s['retention_dropped']:,}"),
    ("in flight", lambda s: f"{s['in_flight']:,}"),
    ("lost", lambda s: f"{s['lost']:,}"),
    ("ledger adds up", lambda s: "yes" if s["adds_up"] else "NO"),
    ("errors", lambda s: f"{s['errors']:,}"),
]


# Request-reply runs: the requests' ledger beside the messages' (lab/engine/requests.py).
REQUEST_ROWS: list[tuple[str, Callable[[dict], str]]] = [
    ("round trip p50 / p99 / max (ms)", lambda s: _pair(s["round_trip_ms"])),
    ("replied / timed out", lambda s: f"{s['replied']:,} / {s['timed_out']:,}"),
    ("late / duplicate replies", lambda s: f"{s['late_replies']:,} / {s['duplicate_replies']:,}"),
    ("held back (window full)", lambda s: f"{s['held_back']:,}"),
]


def columns(result: "RunResult") -> list[tuple[str, dict]]:
    """The comparison's columns: one per broker, or in pub-sub one per subscriber
    ("redis sub-1"), since each subscriber has a ledger of its own."""
    out = []
    for name, b in result.brokers.items():
        subscribers = b.summary.get("subscribers") or {}
        if subscribers:
            out += [(f"{name} {sub}", s) for sub, s in subscribers.items()]
        else:
            out.append((name, b.summary))
    return out


def summary_rows(result: "RunResult") -> list[tuple[str, Callable[[dict], str]]]:
    """SUMMARY_ROWS, and the stream stage's rows when a broker of the run had one."""
    streams = any(b.summary.get("stream") for b in result.brokers.values())
    requests = any("round_trip_ms" in b.summary for b in result.brokers.values())
    return (
        SUMMARY_ROWS
        + (REQUEST_ROWS if requests else [])
        + (stream_summary.STREAM_ROWS if streams else [])
    )


def alarming(label: str, summary: dict) -> bool:
    """A figure that must catch the eye: messages lost, a ledger that does not add up, a
    feature view that differs from the truth."""
    return (
        (label == "lost" and summary["lost"] > 0)
        or (label == "ledger adds up" and not summary["adds_up"])
        or (label == "replied / timed out" and summary["timed_out"] > 0)
        or stream_summary.alarming(label, summary)
    )
