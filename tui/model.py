"""What the Run screen shows, kept apart from how it is drawn.

A reader thread folds every Snapshot into a RunModel; the screen takes a consistent view
of it when it renders. Because the model keeps the sparkline history and the events that
have not been shown yet, the screen may skip or coalesce renders without losing a point
or an event.
"""

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.metrics import BrokerSnapshot, Event, Snapshot

HISTORY = 120  # points per sparkline: a minute at the Snapshot cadence
SERIES = ("sent", "recv", "lag")


@dataclass(frozen=True)
class View:
    """One consistent look at the model, for one render."""

    snapshot: Snapshot
    history: dict[str, dict[str, list[float]]]  # broker -> series -> points (new lists)
    events: list[Event]  # not shown before
    seq: int  # how many Snapshots the model has seen


@dataclass
class RunModel:
    history_len: int = HISTORY
    latest: Snapshot | None = None
    ended: bool = False
    seq: int = 0
    _history: dict[str, dict[str, deque]] = field(default_factory=dict)
    _pending: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, snap: Snapshot) -> None:
        with self._lock:
            self.latest = snap
            self.seq += 1
            self._pending.extend(snap.events)
            for b in snap.brokers:
                series = self._history.setdefault(
                    b.broker, {name: deque(maxlen=self.history_len) for name in SERIES}
                )
                series["sent"].append(b.produce_rate)
                series["recv"].append(b.consume_rate)
                series["lag"].append(float(b.lag or 0))

    def finish(self, final: Snapshot) -> None:
        """Show `final` (the whole run's figures) from now on; the sparklines keep the
        live history."""
        with self._lock:
            self.latest = final
            self.ended = True
            self.seq += 1

    def note(self, event: Event) -> None:
        """An event from the UI itself (export paths, a refused command)."""
        with self._lock:
            self._pending.append(event)

    def take(self) -> View | None:
        with self._lock:
            if self.latest is None:
                return None
            events, self._pending = self._pending, []
            # New lists every time: Sparkline only redraws when `data` is a new object.
            history = {
                broker: {name: list(points) for name, points in series.items()}
                for broker, series in self._history.items()
            }
            return View(self.latest, history, events, self.seq)


# --- the summary row: who leads on each figure ------------------------------------------

# figure label -> (how to read it from a broker, True when higher is better)
FIGURES: list[tuple[str, Callable[[BrokerSnapshot], float | None], bool]] = [
    ("sent/s", lambda b: b.produce_rate, True),
    ("recv/s", lambda b: b.consume_rate, True),
    ("lag", lambda b: b.lag, False),
    ("pub p99", lambda b: b.publish.p99 if b.publish.count else None, False),
    ("e2e p99", lambda b: b.e2e.p99 if b.e2e.count else None, False),
    ("lost", lambda b: b.ledger.lost, False),
    ("dup", lambda b: b.ledger.duplicates, False),
    ("cpu", lambda b: b.cpu_percent, False),
    ("mem", lambda b: b.rss_bytes, False),
]


def leaders(brokers: tuple[BrokerSnapshot, ...]) -> list[tuple[str, str]]:
    """(figure, leader) for every figure: a broker name, "=" when the best is shared, "-"
    when fewer than two brokers have a value to compare."""
    out = []
    for label, read, higher in FIGURES:
        values = [(b.broker, read(b)) for b in brokers]
        values = [(name, v) for name, v in values if v is not None]
        if len(values) < 2:
            out.append((label, "-"))
            continue
        best = max(v for _, v in values) if higher else min(v for _, v in values)
        top = [name for name, v in values if v == best]
        out.append((label, top[0] if len(top) == 1 else "="))
    return out


# --- the header: where the run is in its rate profile ------------------------------------


def profile_position(rate: dict, t: float, duration: float) -> str:
    """'curve, slice 2 of 8' or 'spike: peak 1,000/s in 5 s' for a recipe's rate table."""
    profile = rate.get("profile", "steady")
    base = float(rate.get("rate", 0))
    if profile == "ramp":
        return f"ramp {base:,.0f}→{float(rate.get('to', 0)):,.0f}/s"
    if profile == "spike":
        start, length = float(rate.get("start", 0)), float(rate.get("length", 0))
        peak = f"{float(rate.get('peak', 0)):,.0f}/s"
        if t < start:
            return f"spike: {base:,.0f}/s, peak {peak} in {start - t:.0f} s"
        if t < start + length:
            return f"spike: PEAK {peak} for {start + length - t:.0f} s more"
        return f"spike: {base:,.0f}/s, peak {peak} over"
    if profile == "curve":
        slices = len(rate.get("curve") or ()) or 1
        now = min(int(t / duration * slices) + 1, slices) if duration > 0 else 1
        return f"curve: slice {now} of {slices} (mean {base:,.0f}/s)"
    return f"steady {base:,.0f}/s"
