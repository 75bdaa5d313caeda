"""The engine's side of one broker's stream stage.

BrokerRun folds the workers' stream reports in (under the session's lock): the producers'
acked event times into the broker's, each consumer's stage report into its subscription's
(lab/stream/subscription.py: one per subscriber in pub-sub, else one). The broker's
monitor thread provisions the stores and the alerts topic before workers start, compares
the windows that can be compared while the run goes on (lab/stream/live.py), and at the
end reads the stores back and removes them and the alerts topic (so no client is shared
between threads). The final comparison with the truth is made when the results are built.
"""

import time
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
from lab.stream.figures import StreamFigures, summed
from lab.stream.live import LiveTruth, horizon
from lab.stream.subscription import SubscriptionStream
from lab.stream.triggers import alerts_spec
from lab.stream.view import StoreError, open_store
from lab.stream.windows import WindowSpec, rel_ms

if TYPE_CHECKING:
    from lab.runtimes import Runtime

LIVE_EVERY = 1.0  # s between the monitor's live comparisons
LIVE_TIMEOUT = 5.0  # s a live read may take: it holds up the broker's probes meanwhile


def store_endpoint(recipe: Recipe, runtime: "Runtime") -> Endpoint | None:
    """Where the recipe's view store runs, None without a [stream] stage; a LabError
    that names the section when the runtime does not know it."""
    if not recipe.stream.on:
        return None
    try:
        return runtime.endpoint(recipe.stream.view_store)
    except LabError as exc:
        raise LabError(f"[stream] view_store {recipe.stream.view_store}: {exc}") from None


Due = list[tuple[int, list[int]]]  # (subscription, window starts) to compare now


class StreamRun:
    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.cfg = spec.recipe.stream
        self.times: dict[int, dict[int, int]] = {}  # producer -> seq -> intended ns
        self.marks: dict[int, int | None] = {}  # producer -> resolved mark (ns)
        self.windows = WindowSpec.of(self.cfg.windows)
        live = self.windows is not None and not spec.recipe.poison_share
        self.truth = LiveTruth(self.cfg) if live else None
        self.subs = [SubscriptionStream(spec, name, live) for name in spec.subscribers]
        self.alerts: BrokerAdapter | None = None
        self.live_due = 0.0

    @classmethod
    def of(cls, spec: RunSpec) -> "StreamRun | None":
        return cls(spec) if spec.recipe.stream.on else None

    # --- what workers say (session lock held) -------------------------------------------

    def on_message(
        self, kind: str, body: object, worker: int, subscriber: int, t0_ns: int | None
    ) -> None:
        if kind == "stream-acked":
            raw, mark = body
            pairs = array("q")
            pairs.frombytes(raw)
            times = self.times.setdefault(worker, {})
            for i in range(0, len(pairs), 2):
                times[pairs[i]] = pairs[i + 1]
            if self.truth is not None and t0_ns is not None:
                self.truth.add(worker, pairs, t0_ns)
            self.marks[worker] = mark
            return
        self.subs[subscriber].fold(body, worker)

    # --- the monitor thread -------------------------------------------------------------

    def provision(self, ensure_up: Callable[[str], None]) -> None:
        """The stores up and ready, and the alerts topic made: before any worker starts."""
        name, ep = self.cfg.view_store, self.spec.stream_store
        if ep is None:
            raise LabError(f"[stream] view_store {name}: the lab does not know where it runs")
        try:
            ensure_up(name)
        except LabError as exc:
            raise LabError(f"[stream] view_store {name} cannot start: {exc}") from None
        for sub in self.subs:
            sub.store = open_store(name, ep, sub.store_config())
            try:
                sub.store.provision()
            except OSError as exc:
                raise LabError(
                    f"[stream] view_store {name} at {ep.redacted()} does not answer ({exc}): "
                    f"lab up {name}, or choose another view_store"
                ) from None
            if sub.tally is not None:
                sub.live_store = open_store(name, ep, sub.store_config(), LIVE_TIMEOUT)
        if self.cfg.triggers.action == "alert":
            self.alerts = registry.adapter_for(alerts_spec(self.spec))
            self.alerts.provision()

    def due(self, workers: list, t0_ns: int | None) -> Due:
        """The windows each subscription can compare now (the session's lock held).
        `workers`: the broker's WorkerHandles."""
        if self.truth is None or t0_ns is None or time.monotonic() < self.live_due:
            return []
        self.live_due = time.monotonic() + LIVE_EVERY
        running = [w for w in workers if not (w.finished or w.eof)]
        producers = [w.index for w in running if w.role == "producer"]
        marks = [self.marks.get(i) for i in producers]
        truth_ms = horizon(None if m is None else rel_ms(m, t0_ns) for m in marks)
        now_ms = rel_ms(time.monotonic_ns(), t0_ns)
        out = []
        for n, sub in enumerate(self.subs):
            mine = [w.index for w in running if w.role == "consumer" and w.spec.subscriber == n]
            starts = sub.tally.due(self.windows, truth_ms, horizon(sub.store_clock(mine)), now_ms)
            if starts:
                out.append((n, starts))
        return out

    def read_live(self, due: Due) -> list[tuple[int, list[int], dict]]:
        """The stores' cells of the windows due (no lock held: this is store I/O). A store
        that does not answer now is asked again next time."""
        out = []
        for n, starts in due:
            try:
                out.append((n, starts, self.subs[n].live_store.read_windows(starts)))
            except (StoreError, OSError):
                self.live_due = time.monotonic() + LIVE_EVERY
        return out

    def compare_live(self, read: list[tuple[int, list[int], dict]]) -> None:
        """The session's lock held."""
        for n, starts, observed in read:
            self.subs[n].compare_live(self.truth, starts, observed)
        if self.truth is not None and read:
            self.truth.forget_below(min(sub.tally.next_start for sub in self.subs))

    def finish(self, say: Callable[[str], None]) -> None:
        """After the last consumer left: read the stores back, then remove what the run made."""
        for sub in self.subs:
            store = sub.store
            if store is None:
                continue
            try:
                sub.view = store.read_view() if self.cfg.view else {}
                sub.windows = store.read_windows() if self.cfg.windows.kind else {}
            except OSError as exc:
                say(f"view store not read at the end, no comparison with the truth: {exc}")
            try:
                store.teardown()
            except Exception as exc:  # the store may be down after a drill
                say(f"view store not cleaned up: {exc}")
            store.close()
            if sub.live_store is not None:
                sub.live_store.close()
        try:
            self._alerts_gone()
        except Exception as exc:  # the broker may be down after a drill
            say(f"alerts topic not cleaned up: {exc}")

    def _alerts_gone(self) -> None:
        if self.alerts is not None:
            try:
                self.alerts.teardown()
            finally:
                self.alerts.close()

    # --- snapshots and results ----------------------------------------------------------

    def figures(self, counts: list[LedgerCounts]) -> tuple[StreamFigures, list[StreamFigures]]:
        """The broker's figures and each subscription's; `counts`: each one's ledger."""
        parts = []
        fresh_all, latency_all = new_histogram(), new_histogram()
        for sub, c in zip(self.subs, counts, strict=True):
            latency = sub.latency()
            parts.append(sub.figures(c, sub.window_freshness, latency))
            fresh_all.add(sub.window_freshness)
            latency_all.add(latency)
            sub.window_freshness.reset()
        if len(parts) == 1:
            return parts[0], parts
        fresh, trig = comparison.percentiles(fresh_all), comparison.percentiles(latency_all)
        if all(p.final for p in parts):
            trig = comparison.percentiles(self._merged("trigger_latency"))
        latencies = {
            "freshness_p50_ms": fresh["p50"],
            "freshness_p99_ms": fresh["p99"],
            "trigger_p50_ms": trig["p50"],
            "trigger_p99_ms": trig["p99"],
        }
        return summed(parts, latencies), parts

    def result(self, ledgers: list[Ledger], t0_ns: int | None) -> tuple[dict, list[dict]]:
        """The broker's `stream` in results, and each subscription's (its store compared
        with the truth of its own ledger)."""
        parts = [
            sub.result(ledger, self.times, t0_ns)
            for sub, ledger in zip(self.subs, ledgers, strict=True)
        ]
        whole = comparison.combined(
            parts, self._merged("freshness"), self._merged("trigger_latency")
        )
        return whole, parts

    def _merged(self, name: str) -> HdrHistogram:
        merged = new_histogram()
        for sub in self.subs:
            merged.add(getattr(sub.totals, name))
        return merged
