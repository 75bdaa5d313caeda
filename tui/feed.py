"""Where the Run screen's Snapshots come from: a live Session, or a recorded run replayed.

Both offer what the screen uses of the Session API: subscribe() (a queue of Snapshots,
None after the last), command(), result and close(). A replay rebuilds Snapshot-like data
from a RunResult's series and events, so it needs no broker.
"""

import dataclasses
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from lab.engine.commands import Command
from lab.ledger import LedgerCounts
from lab.metrics import BrokerSnapshot, Event, Latency, RequestFigures, Snapshot
from lab.phases import Phase, run_phase
from lab.results import RunResult
from lab.stream.figures import from_summary


class Feed(Protocol):
    result: RunResult | None

    def subscribe(self) -> "queue.Queue[Snapshot | None]": ...

    def command(self, cmd: Command) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RunInfo:
    """What the Run screen knows before the first Snapshot."""

    brokers: tuple[str, ...]
    recipe: dict  # the recipe as a dict (dataclasses.asdict), for the rate profile
    live: bool  # False: a replay, commands go nowhere
    # broker -> its server and version, as the runtime reported them (an emulator's
    # column names its server)
    versions: Mapping[str, str | None] = field(default_factory=dict)


def snapshots_from_result(result: RunResult) -> list[Snapshot]:
    """The run's Snapshots as recorded in its series (one point per broker per tick)."""
    names = list(result.brokers)
    series = [result.brokers[n].series for n in names]
    ticks = min((len(s) for s in series), default=0)
    events = sorted(result.events, key=lambda e: e.t)
    snaps: list[Snapshot] = []
    e = 0
    for i in range(ticks):
        points = [s[i] for s in series]
        t = points[0]["t"]
        last = i == ticks - 1
        new: list[Event] = []
        while e < len(events) and (events[e].t <= t or last):
            new.append(events[e])
            e += 1
        brokers = tuple(
            _broker(name, p, result.brokers[name].summary if last else None)
            for name, p in zip(names, points, strict=True)
        )
        snaps.append(
            Snapshot(
                run_id=result.run_id,
                recipe=result.recipe.get("name", "?"),
                mode=result.mode,
                seq=i,
                t=t,
                duration=float(result.recipe.get("duration", 0)),
                phase=Phase.DONE if last else run_phase(p["phase"] for p in points),
                brokers=brokers,
                events=tuple(new),
            )
        )
    return snaps


def _broker(name: str, p: dict, final: dict | None) -> BrokerSnapshot:
    """A BrokerSnapshot from a series point; the last one also gets the final ledger."""
    if final is not None:
        ledger = ledger_of(final)
    else:
        # Older results lack the later series fields: they read as 0.
        ledger = LedgerCounts(
            acked=p["acked"],
            delivered=p["delivered"],
            in_flight=p["in_flight"],
            duplicates=p["duplicates"],
            lost=p.get("lost", 0),
            dead_lettered=p.get("dead_lettered", 0),
            retention_dropped=p.get("retention_dropped", 0),
        )
    return BrokerSnapshot(
        broker=name,
        phase=p["phase"],
        state=p["state"],
        producers=p.get("producers", 0),
        consumers=p.get("consumers", 0),
        target_rate=p["target_rate"],
        produce_rate=p["produce_rate"],
        consume_rate=p["consume_rate"],
        backlog=p.get("backlog", 0),
        lag=p.get("lag"),
        dead_letters=final["dead_lettered"] if final else p.get("dead_lettered"),
        retention_dropped=final["retention_dropped"] if final else p.get("retention_dropped"),
        publish=Latency(count=1, p50=p["publish_p50_ms"], p99=p["publish_p99_ms"]),
        e2e=Latency(count=1 if p["e2e_p99_ms"] else 0, p50=p["e2e_p50_ms"], p99=p["e2e_p99_ms"]),
        ledger=ledger,
        errors=p.get("errors", 0),
        cpu_percent=p.get("cpu_percent"),
        rss_bytes=p.get("rss_bytes"),
        network=p.get("network") or {},
        stream=from_summary(final.get("stream")) if final else None,
        requests=_requests(p),
    )


def _requests(p: dict) -> RequestFigures | None:
    """A request-reply point's figures; None for other runs and older files."""
    if "round_trip_p99_ms" not in p:
        return None
    p50, p99 = p["round_trip_p50_ms"], p["round_trip_p99_ms"]
    return RequestFigures(Latency(1 if p99 else 0, p50, 0.0, p99), p["replied"], p["timed_out"])


def latency_of(summary: dict) -> Latency:
    """A results summary's latency (publish_latency_ms, e2e_latency_ms, round_trip_ms)."""
    return Latency(summary["count"], summary["p50"], summary["p95"], summary["p99"], summary["max"])


def ledger_of(summary: dict) -> LedgerCounts:
    """The ledger counts of a results summary (0 for a count an older file lacks)."""
    return LedgerCounts(**{k: summary.get(k, 0) for k in LedgerCounts.__dataclass_fields__})


def whole_run(result: RunResult, last: Snapshot) -> Snapshot:
    """The last Snapshot with the whole run's figures from the results: mean rates after
    warm-up, latency percentiles over the run, the final ledger. Shown once a run ends."""
    brokers = []
    for b in last.brokers:
        summary = result.brokers[b.broker].summary if b.broker in result.brokers else None
        if summary is None:
            brokers.append(b)
            continue
        requests = b.requests
        if "round_trip_ms" in summary:
            requests = RequestFigures(
                latency_of(summary["round_trip_ms"]),
                *(summary[k] for k in ("replied", "timed_out", "late_replies", "held_back")),
            )
        brokers.append(
            dataclasses.replace(
                b,
                produce_rate=summary["produce_rate"],
                consume_rate=summary["consume_rate"],
                publish=latency_of(summary["publish_latency_ms"]),
                e2e=latency_of(summary["e2e_latency_ms"]),
                ledger=ledger_of(summary),
                dead_letters=summary["dead_lettered"],
                retention_dropped=summary["retention_dropped"],
                requests=requests,
            )
        )
    return dataclasses.replace(last, brokers=tuple(brokers), events=())


class ReplayFeed:
    """Plays recorded Snapshots at their own cadence (`speed` times faster), once."""

    def __init__(self, result: RunResult, speed: float = 1.0) -> None:
        self.result = result
        self.snapshots = snapshots_from_result(result)
        self.speed = speed
        self._subscribers: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._running = threading.Event()  # cleared while the display is frozen
        self._running.set()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def info(self) -> RunInfo:
        versions = {name: b.version for name, b in self.result.brokers.items()}
        return RunInfo(tuple(self.result.brokers), self.result.recipe, False, versions)

    def subscribe(self) -> "queue.Queue[Snapshot | None]":
        q: queue.Queue = queue.Queue()
        with self._lock:
            self._subscribers.append(q)
            if self._thread is None:
                self._thread = threading.Thread(target=self._play, name="tui-replay", daemon=True)
                self._thread.start()
        return q

    def hold(self, held: bool) -> None:
        """Stop the replay's clock while the display is frozen, so nothing is skipped."""
        if held:
            self._running.clear()
        else:
            self._running.set()

    def command(self, cmd: Command) -> None:
        """A replay cannot be changed: the screen says so before it gets here."""

    def close(self) -> None:
        self._closed.set()
        self._running.set()

    def _play(self) -> None:
        previous = None
        for snap in self.snapshots:
            if previous is not None:
                delay = max(0.0, (snap.t - previous) / self.speed)
                if self._closed.wait(delay):
                    break
            while not self._running.wait(0.1):
                if self._closed.is_set():
                    break
            previous = snap.t
            self._send(snap)
        self._send(None)

    def _send(self, item: Snapshot | None) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for q in subscribers:
            q.put(item)
