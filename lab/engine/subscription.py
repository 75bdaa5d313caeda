"""One subscription's side of a broker's run: its consumers' ledger, latency and counts.

A work queue has one (unnamed) subscription; pub-sub has one per subscriber, each owed
every acked message, each with its own identity acked == delivered + dead + dropped +
in flight + lost. The producers' side stays in BrokerRun.
"""

from collections import Counter, deque
from dataclasses import dataclass, field, fields

from hdrh.histogram import HdrHistogram

from lab.engine.reporting import Report
from lab.ledger import Ledger, LedgerCounts, SeqCollector
from lab.metrics import Latency, SubscriberSnapshot, new_histogram
from lab.stream.figures import StreamFigures

RATE_WINDOW = 1.0  # seconds over which rates are averaged, as the broker's


@dataclass
class ConsumerTotals:
    processed: int = 0
    processed_bytes: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    receive_calls: int = 0
    empty_receives: int = 0


@dataclass
class Subscription:
    name: str  # "" outside pub-sub
    ledger: Ledger = field(default_factory=Ledger)
    totals: ConsumerTotals = field(default_factory=ConsumerTotals)
    e2e_window: HdrHistogram = field(default_factory=new_histogram)
    e2e_summary: HdrHistogram = field(default_factory=new_histogram)  # after warm-up
    processed_by_second: Counter = field(default_factory=Counter)
    depth: int | None = None  # the broker's word on this subscription's backlog
    max_lag: int = 0
    final_counts: LedgerCounts | None = None
    _rates: deque[tuple[float, int]] = field(default_factory=deque)
    _delivered: SeqCollector = field(default_factory=SeqCollector)
    _dead: SeqCollector = field(default_factory=SeqCollector)

    def fold(self, r: Report) -> None:
        """A consumer's report."""
        t = self.totals
        t.processed += r.processed
        t.processed_bytes += r.processed_bytes
        t.rejected += r.rejected
        t.dead_lettered += r.dead_lettered
        t.receive_calls += r.receive_calls
        t.empty_receives += r.empty_receives
        self.processed_by_second.update(r.processed_by_second)

    def add(self, kind: str, producer: int, seq: int) -> None:
        """One message a consumer delivered, or dead-lettered."""
        (self._delivered if kind == "delivered" else self._dead).add(producer, seq)

    def fold_pending(self) -> None:
        self.ledger.record_delivered(self._delivered.export(), self._delivered.repeats)
        self.ledger.record_dead_lettered(self._dead.export())
        self._delivered, self._dead = SeqCollector(), SeqCollector()

    def on_depth(self, depth: int | None) -> None:
        self.depth = depth
        if depth is not None:
            self.max_lag = max(self.max_lag, depth)

    def counts(self) -> LedgerCounts:
        return self.final_counts or self.ledger.counts()

    def finish(self, depth: int | None) -> LedgerCounts:
        self.fold_pending()
        self.final_counts = self.ledger.counts(depth=depth, final=True)
        return self.final_counts

    def snapshot(
        self, now: float, stopped: bool, stream: StreamFigures | None
    ) -> SubscriberSnapshot:
        """This subscription in a Snapshot; its latency window starts again."""
        processed = self.totals.processed
        rates = self._rates
        rates.append((now, processed))
        while len(rates) > 2 and now - rates[1][0] >= RATE_WINDOW:
            rates.popleft()
        span = now - rates[0][0]
        rate = (processed - rates[0][1]) / span if span > 0 and not stopped else 0.0
        snap = SubscriberSnapshot(
            self.name, rate, self.depth, Latency.of(self.e2e_window), self.counts(), stream
        )
        self.e2e_window.reset()
        return snap

    def drained(self) -> bool:
        return self.ledger.counts().in_flight == 0 and (self.depth or 0) == 0


def summed(counts: list[LedgerCounts]) -> LedgerCounts:
    """Several subscriptions' ledgers as one: each message is owed once to each, so the
    identity holds for the sums as it does for every part."""
    return LedgerCounts(
        **{f.name: sum(getattr(c, f.name) for c in counts) for f in fields(LedgerCounts)}
    )
