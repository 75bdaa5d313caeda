"""One subscription's feature pipeline, engine side: its store, what its consumers'
stages reported, and its comparison with the truth of its own ledger.

A work queue (and request-reply, whose responders are the consumers) has one; pub-sub has
one per subscriber, each with a store of its own (lab/stream/view.py), because each
subscriber is owed every message and keeps its features as if alone.
"""

import dataclasses
import time
from collections import deque
from typing import TYPE_CHECKING

from hdrh.histogram import HdrHistogram

from lab.brokers.contract import RunSpec
from lab.ledger import Ledger, LedgerCounts
from lab.metrics import new_histogram
from lab.stream import summary as comparison
from lab.stream import truth as truths
from lab.stream.figures import StreamFigures, compared
from lab.stream.live import LiveTally, LiveTruth
from lab.stream.stage import StageReport, store_config
from lab.stream.view import StoreConfig
from lab.stream.windows import WindowSpec

if TYPE_CHECKING:
    from lab.stream.view import PostgresStore, RedisStore

RECENT_S = 2.0  # the live trigger latency is over this much of the run


class SubscriptionStream:
    def __init__(self, spec: RunSpec, name: str, live: bool) -> None:
        self.spec = spec
        self.name = name  # "" outside pub-sub
        self.cfg = spec.recipe.stream
        self.totals = comparison.StageTotals()
        self.window_freshness = new_histogram()  # since the last Snapshot
        self.recent_latency: deque[tuple[float, HdrHistogram]] = deque()
        self.store: RedisStore | PostgresStore | None = None
        self.live_store: RedisStore | PostgresStore | None = None  # the monitor's live reads
        self.view: dict[int, tuple[int, int]] | None = None
        self.windows: dict[tuple[int, int], tuple[int, int]] | None = None
        self.final: dict | None = None
        self.clocks: dict[int, int] = {}  # consumer index -> run clock (ms) of its last report
        self.done: set[int] = set()  # consumers whose stage posted its last report
        spec_w = WindowSpec.of(self.cfg.windows)
        self.tally = LiveTally(spec_w.starts(0)[0]) if live and spec_w else None

    def store_config(self) -> StoreConfig:
        return store_config(dataclasses.replace(self.spec, subscriber=self.name))

    def fold(self, r: StageReport, consumer: int) -> None:
        """One consumer's StageReport (the session's lock held)."""
        t = self.totals
        t.seen += r.seen
        t.applied += r.applied
        t.deduped += r.deduped
        t.late_events += r.late_events
        for w, n in r.late.items():
            t.late[w] = t.late.get(w, 0) + n
        t.fired += r.fired
        t.sent += r.sent
        t.suppressed += r.suppressed
        t.failed += r.failed
        t.error = r.error or t.error
        if r.freshness:
            delta = HdrHistogram.decode(r.freshness)
            t.freshness.add(delta)
            self.window_freshness.add(delta)
        if r.trigger_latency:
            delta = HdrHistogram.decode(r.trigger_latency)
            t.trigger_latency.add(delta)
            self.recent_latency.append((time.monotonic(), delta))
        if self.tally is not None:
            self.tally.on_fired(r.fired)
        if r.final:
            self.done.add(consumer)
        elif r.clock_ms is not None:
            self.clocks[consumer] = r.clock_ms

    def store_clock(self, open_consumers: list[int]) -> list[int | None]:
        """The clocks of this subscription's consumers still running: one that has not
        reported yet is unknown (None)."""
        return [self.clocks.get(i) for i in open_consumers if i not in self.done]

    def compare_live(
        self, truth: LiveTruth, starts: list[int], observed: dict[tuple[int, int], tuple[int, int]]
    ) -> None:
        t = self.cfg.triggers
        trigger = (t.statistic, t.threshold) if t.action else None
        assert self.tally is not None
        self.tally.compare(truth, starts, observed, trigger)

    # --- snapshots and results ----------------------------------------------------------

    def latency(self) -> HdrHistogram:
        """Trigger latencies of the last RECENT_S seconds."""
        now, recent = time.monotonic(), self.recent_latency
        while recent and recent[0][0] < now - RECENT_S:
            recent.popleft()
        merged = new_histogram()
        for _, delta in recent:
            merged.add(delta)
        return merged

    def figures(
        self, counts: LedgerCounts, freshness: HdrHistogram, latency: HdrHistogram
    ) -> StreamFigures:
        """`freshness` / `latency`: this interval's (the broker's, in pub-sub merged)."""
        t = self.totals
        fresh = comparison.percentiles(freshness)
        trig = comparison.percentiles(latency)
        base = {
            "store": self.cfg.view_store,
            "dedupe": self.cfg.dedupe,
            "applied": t.applied,
            "deduped": t.deduped,
            "late": t.late_events,
            "fired": len(t.fired),
            "suppressed": t.suppressed,
            "freshness_p50_ms": fresh["p50"],
            "freshness_p99_ms": fresh["p99"],
            "trigger_p50_ms": trig["p50"],
            "trigger_p99_ms": trig["p99"],
        }
        f = self.final
        if f is None:
            distinct = counts.delivered + counts.unacked_delivered
            over = max(0, t.applied - distinct) if self.cfg.view else None
            return StreamFigures(**base, view_error=over, **self._live())
        return StreamFigures(**(base | compared(f)))

    def _live(self) -> dict:
        tally = self.tally
        spec = WindowSpec.of(self.cfg.windows)
        if tally is None or spec is None:
            return {}
        # Windows are compared from the first one holding t = 0: until the first is done,
        # nothing is known yet.
        if tally.next_start == spec.starts(0)[0]:
            return {}
        out = {
            "windows_to_s": (tally.next_start - spec.hop_ms + spec.size_ms) / 1000,
            "windows_exact": tally.exact,
            "windows_wrong": tally.wrong,
        }
        if self.cfg.triggers.action:
            out.update(
                expected=tally.expected,
                missed=tally.missed,
                spurious=tally.spurious,
                duplicated=tally.duplicated,
            )
        return out

    def result(self, ledger: Ledger, times: dict[int, dict[int, int]], t0_ns: int | None) -> dict:
        """The subscription's `stream` in results: its store compared with the truth."""
        if self.final is None:
            truth = truths.compute(self.cfg, ledger, times, t0_ns)
            self.final = comparison.compare(self.cfg, truth, self.view, self.windows, self.totals)
        return self.final
