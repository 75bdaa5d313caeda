"""A run's results: what ran, where, and what happened, as lossless re-loadable JSON."""

import dataclasses
import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from lab import __version__
from lab.ledger import LedgerCounts
from lab.metrics import Event, Latency
from lab.recipes import Recipe

SCHEMA = 1


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
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> "RunResult":
        return cls.from_dict(json.loads(Path(path).read_text()))


def latency_summary(lat: Latency) -> dict:
    return {"p50": lat.p50, "p95": lat.p95, "p99": lat.p99, "max": lat.max, "count": lat.count}


def measured_rate(per_second: list[int], recipe: Recipe) -> float:
    """Messages per second over the whole seconds between warm-up and the run's end."""
    first, last = math.ceil(recipe.warmup), int(recipe.duration)
    if last <= first:
        return 0.0
    return sum(per_second[first:last]) / (last - first)


def summary(
    counts: LedgerCounts,
    series: list[dict],
    per_second: dict[str, list[int]],
    recipe: Recipe,
    publish: Latency,
    e2e: Latency,
    failed: int,
    errors: int,
    max_backlog: int,
) -> dict:
    """The per-broker summary: ledger counts, rates and latencies after warm-up."""
    running = [s for s in series if s["phase"] == "running"]

    def mean(key: str) -> float:
        return sum(s[key] for s in running) / len(running) if running else 0.0

    lags = [s["lag"] for s in series if s["lag"] is not None]
    return {
        **counts.to_dict(),
        "failed": failed,
        "errors": errors,
        "target_rate": mean("target_rate"),
        # Exact: acked (processed) messages counted per second of the run clock, over the
        # whole seconds from the end of warm-up to the end of the schedule.
        "produce_rate": measured_rate(per_second["acked"], recipe),
        "consume_rate": measured_rate(per_second["processed"], recipe),
        "publish_latency_ms": latency_summary(publish),
        "e2e_latency_ms": latency_summary(e2e),
        "max_lag": max(lags, default=0),
        "max_backlog": max_backlog,
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
