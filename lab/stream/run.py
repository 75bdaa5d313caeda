"""The engine's side of one broker's stream stage.

BrokerRun folds the workers' stream reports in (under the session's lock); the broker's
monitor thread provisions the store and the alerts topic before workers start, and at
the end reads the store back and removes both (so no client is shared between threads).
The comparison with the truth is made once, when the results are built.
"""

from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING

from hdrh.histogram import HdrHistogram

from lab import brokers as registry
from lab.brokers.contract import BrokerAdapter, RunSpec
from lab.endpoints import Endpoint
from lab.errors import LabError
from lab.ledger import Ledger, LedgerCounts
from lab.metrics import new_histogram
from lab.recipes.model import Recipe
from lab.stream import summary as comparison
from lab.stream import truth as truths
from lab.stream.figures import StreamFigures
from lab.stream.stage import StageReport
from lab.stream.triggers import alerts_spec
from lab.stream.view import StoreConfig, open_store

if TYPE_CHECKING:
    from lab.runtimes import Runtime


def store_endpoint(recipe: Recipe, runtime: "Runtime") -> Endpoint | None:
    """Where the recipe's view store runs, None without a [stream] stage; a LabError
    that names the section when the runtime does not know it."""
    if not recipe.stream.on:
        return None
    try:
        return runtime.endpoint(recipe.stream.view_store)
    except LabError as exc:
        raise LabError(f"[stream] view_store {recipe.stream.view_store}: {exc}") from None


class StreamRun:
    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.cfg = spec.recipe.stream
        self.totals = comparison.StageTotals()
        self.window_freshness = new_histogram()  # since the last Snapshot
        self.times: dict[int, dict[int, int]] = {}  # producer -> seq -> intended ns
        self.store = None
        self.alerts: BrokerAdapter | None = None
        self.view: dict[int, tuple[int, int]] | None = None
        self.windows: dict[tuple[int, int], tuple[int, int]] | None = None
        self.final: dict | None = None

    @classmethod
    def of(cls, spec: RunSpec) -> "StreamRun | None":
        return cls(spec) if spec.recipe.stream.on else None

    # --- what workers say (session lock held) -------------------------------------------

    def on_message(self, kind: str, body: object, worker_index: int) -> None:
        if kind == "stream-acked":
            pairs = array("q")
            pairs.frombytes(body)
            times = self.times.setdefault(worker_index, {})
            for i in range(0, len(pairs), 2):
                times[pairs[i]] = pairs[i + 1]
            return
        r: StageReport = body
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
            t.trigger_latency.add(HdrHistogram.decode(r.trigger_latency))

    # --- the monitor thread -------------------------------------------------------------

    def provision(self, ensure_up: Callable[[str], None]) -> None:
        """The store up and ready, and the alerts topic made: before any worker starts."""
        name, ep = self.cfg.view_store, self.spec.stream_store
        if ep is None:
            raise LabError(f"[stream] view_store {name}: the lab does not know where it runs")
        try:
            ensure_up(name)
        except LabError as exc:
            raise LabError(f"[stream] view_store {name} cannot start: {exc}") from None
        self.store = open_store(name, ep, self._store_config())
        try:
            self.store.provision()
        except OSError as exc:
            raise LabError(
                f"[stream] view_store {name} at {ep.redacted()} does not answer ({exc}): "
                f"lab up {name}, or choose another view_store"
            ) from None
        if self.cfg.triggers.action == "alert":
            self.alerts = registry.adapter_for(alerts_spec(self.spec))
            self.alerts.provision()

    def finish(self, say: Callable[[str], None]) -> None:
        """After the last consumer left: read the store back, then remove what the run made."""
        if self.store is None:
            return
        try:
            self.view = self.store.read_view() if self.cfg.view else {}
            self.windows = self.store.read_windows() if self.cfg.windows.kind else {}
        except OSError as exc:
            say(f"view store not read at the end, no comparison with the truth: {exc}")
        cleanups = (("view store", self.store.teardown), ("alerts topic", self._alerts_gone))
        for what, remove in cleanups:
            try:
                remove()
            except Exception as exc:  # the store or broker may be down after a drill
                say(f"{what} not cleaned up: {exc}")
        self.store.close()

    def _alerts_gone(self) -> None:
        if self.alerts is not None:
            try:
                self.alerts.teardown()
            finally:
                self.alerts.close()

    def _store_config(self) -> StoreConfig:
        t = self.cfg.triggers
        return StoreConfig(
            self.spec.run_id,
            self.spec.broker,
            self.cfg.dedupe,
            self.cfg.view,
            t.statistic if t.action else "",
            t.threshold,
        )

    # --- snapshots and results ----------------------------------------------------------

    def figures(self, counts: LedgerCounts) -> StreamFigures:
        t = self.totals
        fresh = comparison.percentiles(self.window_freshness)
        self.window_freshness.reset()
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
        }
        f = self.final
        if f is None:
            distinct = counts.delivered + counts.unacked_delivered
            over = max(0, t.applied - distinct) if self.cfg.view else None
            return StreamFigures(**base, view_error=over)
        w, trig = f["windows"] or {}, f["triggers"] or {}
        return StreamFigures(
            **base,
            view_error=f["view_error"],
            final=True,
            expected=trig.get("expected"),
            missed=trig.get("missed"),
            spurious=trig.get("spurious"),
            duplicated=trig.get("duplicated"),
            windows_exact=w.get("exact"),
            windows_wrong=w.get("wrong"),
        )

    def result(self, ledger: Ledger, t0_ns: int | None) -> dict:
        """The broker's `stream` in results: the store compared with the truth."""
        if self.final is None:
            truth = truths.compute(self.cfg, ledger, self.times, t0_ns)
            self.final = comparison.compare(self.cfg, truth, self.view, self.windows, self.totals)
        return self.final
