"""One broker's part of a run: its adapter, its workers, and what they reported.

All methods are called with the session's lock held, from the session's threads; the
probe runs on its own thread (see BrokerMonitor) so a hung broker never delays a Snapshot.
"""

import dataclasses
import time
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from lab import brokers as registry
from lab.brokers.contract import BrokerAdapter, Probe, RunSpec
from lab.engine import outcome
from lab.engine.control import Assign, Burst, Crash, SetMultiplier, Slow, Start
from lab.engine.pacing import rate_function
from lab.engine.positions import PositionIndex, collect
from lab.engine.reporting import Report, WorkerSpec
from lab.engine.requests import RequestTally
from lab.engine.subscription import RATE_WINDOW, Subscription, summed
from lab.engine.workers import WorkerHandle, reap, start_worker
from lab.errors import LabError
from lab.faults import Fault
from lab.ledger import Ledger, LedgerCounts
from lab.messages import unpack
from lab.metrics import BrokerSnapshot, Latency, new_histogram
from lab.phases import PRODUCING, TERMINAL, Phase
from lab.results import BrokerResult
from lab.stream.run import StreamRun


@dataclass
class Totals:
    sent: int = 0
    sent_bytes: int = 0
    acked: int = 0
    acked_bytes: int = 0
    failed: int = 0
    processed: int = 0
    processed_bytes: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    poison_acked: int = 0
    foreign: int = 0
    errors: int = 0
    receive_calls: int = 0
    empty_receives: int = 0


@dataclass
class Health:
    """The latest word from the broker's monitor thread."""

    state: str = "unknown"
    # When a fault last said the state (monotonic s): a probe that began before it is
    # older news.
    said_at: float = 0.0
    probe: Probe = field(default_factory=Probe)
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    max_lag: int = 0


class BrokerRun:
    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.broker = spec.broker
        self.recipe = spec.recipe
        self.adapter: BrokerAdapter = registry.adapter_for(spec)
        self.assigns_partitions = registry.get(spec.broker).assigns_partitions
        self.phase = Phase.WAITING
        self.t0_ns: int | None = None  # producers' clock zero
        self.workers: list[WorkerHandle] = []
        self.next_index = {"producer": 0, "consumer": 0}
        self.totals = Totals()
        # Each subscription's ledger and consumer side: one, unnamed, outside pub-sub.
        self.subs = [Subscription(name) for name in spec.subscribers]
        self.pub_sub = self.recipe.pattern == "pub-sub"
        self.positions = PositionIndex()
        self.publish_window = new_histogram()
        self.e2e_window = new_histogram()
        self.publish_summary = new_histogram()  # after warm-up only
        self.e2e_summary = new_histogram()
        self.max_backlog = 0
        self._backlog: dict[int, int] = {}
        self._rates: deque[tuple[float, int, int, int, int]] = deque()
        self.health = Health()
        self.last_error = ""
        self.multiplier = 1.0
        self.deadline = 0.0  # of the current phase (connecting, draining, stopping)
        self.schedule: list[tuple[float, Fault]] = []  # (seconds of run clock, fault), sorted
        self.by_second: dict[str, Counter] = {k: Counter() for k in ("sent", "acked", "processed")}
        self.produced_for = 0.0  # seconds of run clock until the producers were done
        # The durability settings as the broker reported them: at the start, after each
        # restart, at the end ({"when": ..., "t": session seconds, "settings": {...}}).
        self.settings_read: list[dict] = []
        self.started_at: float | None = None  # session seconds
        self.finished_at: float | None = None
        self.stream = StreamRun.of(spec)  # the [stream] stage's engine side, if any
        self.requests = RequestTally() if self.recipe.request_reply else None

    # --- workers ---------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        """The first subscription's ledger: a work queue's only one."""
        return self.subs[0].ledger

    def counts(self) -> LedgerCounts:
        """The ledger's counts; in pub-sub summed over the subscriptions."""
        return summed([sub.counts() for sub in self.subs])

    def start_consumers(self) -> None:
        for sub in range(len(self.subs)):
            for _ in range(self.recipe.consumers.count):
                self.add_worker("consumer", subscriber=sub)
        self.rebalance()

    def rebalance(self) -> None:
        """Brokers without consumer groups: every live consumer gets its share of the
        partitions (every n-th), told again only when its share changed."""
        if not self.assigns_partitions:
            return
        for sub in range(len(self.subs)):  # each subscription reads every partition
            live = [w for w in self.live("consumer") if w.spec.subscriber == sub]
            consumers = sorted(live, key=lambda w: w.index)
            for i, w in enumerate(consumers):
                parts = range(self.recipe.partitions)
                share = tuple(p for p in parts if p % len(consumers) == i)
                if w.assigned != share:
                    w.assigned = share
                    w.tell(Assign(share))

    def start_producers(self) -> None:
        """Producers connect, say ready, and wait for `go`."""
        count = self.recipe.producers.count
        for _ in range(count):
            self.add_worker("producer", share=1.0 / count)

    def producers_ready(self) -> bool:
        return all(w.ready for w in self.workers if w.role == "producer")

    def go(self, t0_ns: int) -> None:
        """Start every producer's schedule on the same clock zero."""
        self.t0_ns = t0_ns
        for w in self.live("producer") + self.live("consumer"):
            w.tell(Start(t0_ns, self.multiplier))

    def add_worker(self, role: str, share: float = 1.0, subscriber: int = 0) -> WorkerHandle:
        index = self.next_index[role]
        self.next_index[role] += 1
        run = self.spec
        if role == "consumer" and self.pub_sub:
            run = dataclasses.replace(run, subscriber=self.subs[subscriber].name)
        handle = start_worker(WorkerSpec(run, role, index, share, subscriber))
        self.workers.append(handle)
        return handle

    def live(self, role: str) -> list[WorkerHandle]:
        return [w for w in self.workers if w.role == role and not w.finished and not w.stopping]

    def stop_role(self, role: str) -> None:
        for w in self.live(role):
            w.stop()

    def producers_done(self) -> bool:
        return all(w.finished or not w.alive() for w in self.workers if w.role == "producer")

    def all_done(self) -> bool:
        return all(w.finished or not w.alive() for w in self.workers)

    def reap(self, timeout: float) -> None:
        reap(self.workers, timeout)

    # --- what faults do (lab/faults/actions.py) ------------------------------------------

    def set_state(self, state: str) -> None:
        self.health.state, self.health.said_at = state, time.monotonic()

    def crash_consumer(self) -> int:
        consumers = self.live("consumer")
        if not consumers:
            raise LabError(f"{self.broker} has no consumer to crash")
        # Mid-batch needs a batch: the first consumer that has been receiving, not one still
        # joining its group or holding no partitions (Kafka with more consumers than those).
        victim = next((w for w in consumers if w.received), consumers[0])
        victim.tell(Crash())
        victim.stopping = True  # no longer counted as live; it will send no final report
        return victim.index

    def make_sure_crashed(self, index: int) -> None:
        for w in self.workers:
            if w.role == "consumer" and w.index == index:
                w.kill()
                w.finished = True
        self.rebalance()  # its partitions go to the others, from its last checkpoint

    def add_consumer(self) -> int:
        worker = self.add_worker("consumer")
        if self.t0_ns is not None:
            worker.tell(Start(self.t0_ns, self.multiplier))
        self.rebalance()
        return worker.index

    def remove_consumer(self) -> None:
        consumers = self.live("consumer")
        if consumers:
            consumers[-1].stop()
            self.rebalance()

    def slow_consumers(self, factor: float) -> None:
        for w in self.live("consumer"):
            w.tell(Slow(factor))

    def set_rate(self, multiplier: float) -> None:
        self.multiplier = multiplier
        for w in self.live("producer"):
            w.tell(SetMultiplier(multiplier))

    def burst(self, count: int) -> None:
        producers = self.live("producer")
        if not producers:
            raise LabError(f"{self.broker} has no producer to send a burst")
        for i, w in enumerate(producers):
            w.tell(Burst(count // len(producers) + (i < count % len(producers))))

    # --- what workers say ------------------------------------------------------------

    def on_message(self, handle: WorkerHandle, kind: str, body: object) -> str | None:
        """Fold one worker message in; return an error text worth an event, if any."""
        if kind.startswith("stream"):
            self.stream.on_message(kind, body, handle.index, handle.spec.subscriber, self.t0_ns)
            return None
        if kind in ("delivered", "dead"):
            packed = array("Q")
            packed.frombytes(body)
            sub = self.subs[handle.spec.subscriber]
            for value in packed:
                sub.add(kind, *unpack(value))
            return None
        if kind == "crashed":
            self.totals.errors += 1
            self.last_error = str(body)
            return str(body)
        report: Report = body
        self._fold(handle, report)
        if kind == "ready":
            handle.ready = True
        if kind == "final":
            handle.finished = True
            if handle.role == "producer":
                self._backlog.pop(handle.index, None)
            else:
                self.rebalance()
        return None

    def _fold(self, handle: WorkerHandle, r: Report) -> None:
        t = self.totals
        t.sent += r.sent
        t.sent_bytes += r.sent_bytes
        t.acked += r.acked
        t.acked_bytes += r.acked_bytes
        t.failed += r.failed
        t.processed += r.processed
        handle.received += r.received
        t.processed_bytes += r.processed_bytes
        t.rejected += r.rejected
        t.dead_lettered += r.dead_lettered
        t.poison_acked += r.poison_acked
        if r.positions:
            self.positions.add(r.positions)
        t.foreign += r.foreign
        t.errors += r.errors
        t.receive_calls += r.receive_calls
        t.empty_receives += r.empty_receives
        if r.error_text:
            self.last_error = r.error_text
        if r.acked_seqs or r.sent:
            for sub in self.subs:  # every subscription is owed every acked message
                sub.ledger.record_acked(r.acked_seqs, r.sent)
        if handle.role == "consumer":
            sub = self.subs[handle.spec.subscriber]
            sub.fold(r)
            if r.e2e_hist:
                delta = HdrHistogram.decode(r.e2e_hist)
                sub.e2e_window.add(delta)
                if self._past_warmup():
                    sub.e2e_summary.add(delta)
        in_summary = self._past_warmup()
        for raw, window, whole_run in (
            (r.publish_hist, self.publish_window, self.publish_summary),
            (r.e2e_hist, self.e2e_window, self.e2e_summary),
        ):
            if raw:
                delta = HdrHistogram.decode(raw)
                window.add(delta)
                if in_summary:
                    whole_run.add(delta)
        if handle.role == "producer":
            self._backlog[handle.index] = r.backlog
            if self.requests:
                self.requests.fold(r, in_summary)
        self.by_second["sent"].update(r.sent_by_second)
        self.by_second["acked"].update(r.acked_by_second)
        self.by_second["processed"].update(r.processed_by_second)

    def per_second(self) -> dict[str, list[int]]:
        """Sent, acked and processed messages in each whole second of the run clock."""
        last = max((max(c, default=-1) for c in self.by_second.values()), default=-1)
        return {k: [c.get(i, 0) for i in range(last + 1)] for k, c in self.by_second.items()}

    def _past_warmup(self) -> bool:
        if self.t0_ns is None:
            return False
        return (time.monotonic_ns() - self.t0_ns) / 1e9 >= self.recipe.warmup

    # --- snapshots ---------------------------------------------------------------------

    def elapsed(self) -> float:
        return 0.0 if self.t0_ns is None else max(0.0, (time.monotonic_ns() - self.t0_ns) / 1e9)

    def target_rate(self) -> float:
        if self.phase not in PRODUCING:
            return 0.0
        rate_at = rate_function(self.recipe.rate, self.recipe.duration)
        return rate_at(self.elapsed()) * self.multiplier

    def fold_pending(self) -> None:
        """Move what consumers reported since the last snapshot into the ledgers."""
        for sub in self.subs:
            sub.fold_pending()

    def on_probe(self, probe: Probe) -> None:
        """The broker's word on each subscription's backlog, and on retention: name the
        messages it deleted."""
        self._depths(probe)
        if probe.dropped:
            packed = array("Q")
            packed.frombytes(probe.dropped)
            self.ledger.record_retention_dropped(collect(packed).export())
        if probe.retention_floor:
            below = self.positions.below(probe.retention_floor)
            if below:
                self.ledger.record_retention_dropped(collect(below).export())

    def _depths(self, probe: Probe) -> None:
        if not self.pub_sub:
            self.subs[0].on_depth(probe.depth)
            return
        for sub in self.subs:
            sub.on_depth(probe.subscriber_depths.get(sub.name))

    def snapshot(self, now: float, network: dict[str, dict[str, float]]) -> BrokerSnapshot:
        """`network`: the network faults in force on the broker (the fault injector's)."""
        self.fold_pending()
        t = self.totals
        self._rates.append((now, t.acked, t.processed, t.acked_bytes, t.processed_bytes))
        while len(self._rates) > 2 and now - self._rates[1][0] >= RATE_WINDOW:
            self._rates.popleft()
        first = self._rates[0]
        span = now - first[0]
        rate = [
            (b - a) / span if span > 0 else 0.0
            for a, b in zip(first[1:], self._rates[-1][1:], strict=True)
        ]
        if self.phase in TERMINAL:
            rate = [0.0] * 4
        backlog = sum(self._backlog.values())
        self.max_backlog = max(self.max_backlog, backlog)
        h = self.health
        counts = self.counts()
        streams = self.stream.figures([sub.counts() for sub in self.subs]) if self.stream else None
        snap = BrokerSnapshot(
            broker=self.broker,
            phase=self.phase,
            state=h.state,
            producers=len(self.live("producer")),
            consumers=len(self.live("consumer")),
            target_rate=self.target_rate(),
            produce_rate=rate[0],
            consume_rate=rate[1],
            produce_mbps=rate[2] / 1e6,
            consume_mbps=rate[3] / 1e6,
            backlog=backlog,
            lag=h.probe.depth,
            dead_letters=h.probe.dead_letters,
            retention_dropped=h.probe.retention_dropped,
            publish=Latency.of(self.publish_window),
            e2e=Latency.of(self.e2e_window),
            ledger=counts,
            errors=t.errors,
            last_error=self.last_error,
            cpu_percent=h.cpu_percent,
            rss_bytes=h.rss_bytes,
            network=network,
            stream=streams[0] if streams else None,
            subscribers=self._subscriber_snapshots(now, streams) if self.pub_sub else (),
            requests=self.requests.figures() if self.requests else None,
        )
        self.publish_window.reset()
        self.e2e_window.reset()
        return snap

    def _subscriber_snapshots(self, now: float, streams: tuple | None) -> tuple:
        stopped = self.phase in TERMINAL
        return tuple(
            sub.snapshot(now, stopped, streams[1][n] if streams else None)
            for n, sub in enumerate(self.subs)
        )

    def drained(self) -> bool:
        """Everything acked is accounted for, and the broker holds nothing more."""
        return all(sub.drained() for sub in self.subs)

    def result(self, series: list[dict], version: str | None) -> BrokerResult:
        """This broker's part of the run's results."""
        return outcome.result(self, series, version)

    def ran(self) -> float:
        """Seconds of the schedule the producers ran: to the end, or to a stop."""
        return self.produced_for or self.elapsed()

    def loss_problem(self, lost: int) -> str:
        return outcome.loss_problem(self, lost)

    def finish(self, final_probe: Probe | None) -> LedgerCounts:
        self.fold_pending()
        if final_probe is not None:
            self.on_probe(final_probe)
        for sub in self.subs:
            depth = None
            if final_probe is not None:
                depth = (
                    final_probe.subscriber_depths.get(sub.name)
                    if self.pub_sub
                    else final_probe.depth
                )
            sub.finish(depth)
        if final_probe is not None:
            self.health.probe = final_probe
        return self.counts()
