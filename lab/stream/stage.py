"""The consumer's stream stage: each batch of deliveries becomes one atomic update of the
view store, then the triggers it crossed fire.

The consumer calls it right after it reports the batch as delivered and before it acks:
the stage is the consumer's processing. A consumer that dies after the stage and before
its ack has updated the features for messages the broker will deliver again, which is
exactly what at-least-once does to a real feature pipeline, and why the naive view's
over-count equals the ledger's duplicates.

It posts a StageReport over the worker's pipe after every batch, synchronously like the
"delivered" report, so a SIGKILL a moment later loses no count and no fired trigger.
Each report says when it was made on the run's clock: every batch this stage judged for
lateness before then is in the store, and every later batch is judged later. An idle
consumer says so too, every HIST_INTERVAL (beat), so the engine knows which closed
windows no consumer can still change (lab/stream/live.py).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lab import messages
from lab.brokers.contract import Delivery, RunSpec
from lab.metrics import new_histogram, record_us
from lab.stream.events import EventSource
from lab.stream.triggers import TriggerActions
from lab.stream.view import StoreConfig, Update, open_store
from lab.stream.windows import WindowSpec, rel_ms

HIST_INTERVAL = 0.25  # s between histogram deltas (counts go with every batch)


@dataclass
class StageReport:
    """What one consumer's stage did since its previous report."""

    seen: int = 0  # events handed to the stage (redeliveries included)
    applied: int = 0  # events that changed the store (all of them, unless deduplicating)
    deduped: int = 0  # events the store had already seen (dedupe)
    late_events: int = 0  # applied events late for at least one window
    late: dict[tuple[int, int], int] = field(default_factory=dict)  # (start, key) -> n
    fired: list[tuple[int, int]] = field(default_factory=list)  # (start, key)
    sent: int = 0
    suppressed: int = 0
    failed: int = 0
    error: str = ""
    freshness: bytes = b""  # histogram delta: event time -> view updated (µs)
    trigger_latency: bytes = b""  # event that crossed -> alert acked / command started
    clock_ms: int | None = None  # run clock when posted (None before the run's t0)
    final: bool = False  # the consumer's last report: it applies nothing more


def store_config(spec: RunSpec) -> StoreConfig:
    """The store of the consumers of `spec` (in pub-sub, of its subscriber)."""
    cfg = spec.recipe.stream
    trig = cfg.triggers
    return StoreConfig(
        spec.run_id,
        spec.broker,
        cfg.dedupe,
        cfg.view,
        trig.statistic if trig.action else "",
        trig.threshold,
        spec.subscriber,
    )


class StreamStage:
    def __init__(self, spec: RunSpec, index: int, post: Callable[[tuple], None]) -> None:
        cfg = spec.recipe.stream
        trig = cfg.triggers
        self.post = post
        self.tag = messages.run_tag(spec.run_id)
        self.events = EventSource(cfg)
        self.windows = WindowSpec.of(cfg.windows)
        self.store = open_store(cfg.view_store, spec.stream_store, store_config(spec))
        self.actions = TriggerActions(spec, trig, index) if trig.action else None
        self.freshness = new_histogram()
        self.trigger_latency = new_histogram()
        self.hist_due = time.monotonic() + HIST_INTERVAL
        self._reported = (0, 0, 0)  # the actions' sent, suppressed, failed so far
        self.waiting: list[Delivery] = []
        self.t0_ns: int | None = None
        self.beat_due = 0.0

    @classmethod
    def for_run(
        cls, spec: RunSpec, index: int, post: Callable[[tuple], None]
    ) -> "StreamStage | None":
        return cls(spec, index, post) if spec.recipe.stream.on else None

    def process(self, deliveries: list[Delivery], t0_ns: int | None) -> None:
        self.t0_ns = t0_ns
        if t0_ns is None:
            # The first messages can beat the engine's Start (and its clock zero) to this
            # consumer: they wait for the next batch, a few milliseconds.
            self.waiting += deliveries
            return
        if self.waiting:
            deliveries, self.waiting = self.waiting + deliveries, []
        now_ms = rel_ms(time.monotonic_ns(), t0_ns)
        updates: list[Update] = []
        sent_ns: list[int] = []
        late: list[tuple[int, ...]] = []
        windows = self.windows
        for d in deliveries:
            h = messages.decode(d.payload)
            if h is None or h.run_tag != self.tag or h.poison:
                continue
            key, value = self.events.event(h.producer, h.seq)
            t_ms = rel_ms(h.intended_ns, t0_ns)
            on_time: tuple[int, ...] = ()
            closed: tuple[int, ...] = ()
            if windows is not None:
                starts = windows.starts(t_ms)
                closed = tuple(s for s in starts if windows.closed(s, now_ms))
                on_time = tuple(s for s in starts if s not in closed) if closed else tuple(starts)
            updates.append(Update(messages.pack(h.producer, h.seq), key, value, t_ms, on_time))
            sent_ns.append(h.intended_ns)
            late.append(closed)
        if not updates:
            self.beat()
            return
        fresh, crossings = self.store.apply(updates)
        done = time.monotonic_ns()
        r = StageReport(seen=len(updates))
        for i, u in enumerate(updates):
            if not fresh[i]:
                r.deduped += 1
                continue
            r.applied += 1
            record_us(self.freshness, done - sent_ns[i])
            if late[i]:
                r.late_events += 1
                for start in late[i]:
                    r.late[(start, u.key)] = r.late.get((start, u.key), 0) + 1
        for i, start in crossings:
            r.fired.append((start, updates[i].key))
            if self.actions is not None:
                self.actions.fire(updates[i].key, start, sent_ns[i])
        self._send(r)

    def beat(self, t0_ns: int | None = None) -> None:
        """An empty report, if none went for HIST_INTERVAL: this consumer's clock moves on."""
        self.t0_ns = t0_ns or self.t0_ns
        if self.t0_ns is not None and time.monotonic() >= self.beat_due:
            self._send(StageReport())

    def _send(self, r: StageReport, final: bool = False) -> None:
        a = self.actions
        if a is not None:
            if not final:
                a.poll(0)
            sent, suppressed, failed = self._reported
            r.sent, r.suppressed = a.sent - sent, a.suppressed - suppressed
            r.failed = a.failed - failed
            self._reported = (a.sent, a.suppressed, a.failed)
            r.error = a.last_error
            for ns in a.latencies:
                record_us(self.trigger_latency, ns)
            a.latencies = []
        now = time.monotonic()
        self.beat_due = now + HIST_INTERVAL
        if self.t0_ns is not None:
            r.clock_ms = rel_ms(time.monotonic_ns(), self.t0_ns)
        r.final = final
        if final or now >= self.hist_due:
            self.hist_due = now + HIST_INTERVAL
            if self.freshness.get_total_count():
                r.freshness = self.freshness.encode()
                self.freshness.reset()
            if self.trigger_latency.get_total_count():
                r.trigger_latency = self.trigger_latency.encode()
                self.trigger_latency.reset()
        self.post(("stream", r))

    def close(self, t0_ns: int | None) -> None:
        """The consumer is leaving: alerts flushed, commands waited for, last report sent."""
        self.t0_ns = t0_ns or self.t0_ns
        if self.waiting and t0_ns is not None:
            self.process([], t0_ns)
        if self.actions is not None:
            self.actions.close()
        self._send(StageReport(), final=True)
        self.store.close()
