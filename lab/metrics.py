"""Latency histograms and the immutable Snapshots the engine publishes twice a second.

Latencies are recorded in microseconds in HdrHistogram (1 µs to 1 h, 3 significant
digits), so percentiles from many workers merge exactly. Snapshots are plain frozen
dataclasses: UIs render them, results store them, nothing mutates them.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from hdrh.histogram import HdrHistogram

from lab.ledger import LedgerCounts
from lab.phases import Phase
from lab.stream.figures import StreamFigures

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
DIGITS = 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def record_us(hist: HdrHistogram, nanoseconds: int) -> None:
    hist.record_value(min(max(nanoseconds // 1000, LOWEST_US), HIGHEST_US))


def record_all_us(hist: HdrHistogram, nanoseconds: Sequence[int]) -> None:
    """record_us for a batch: HdrHistogram's record_value costs about 1 us a value in
    Python (four method calls); the same index arithmetic inline, with the totals, min
    and max updated once per batch, is a quarter of that."""
    if not nanoseconds:
        return
    counts, unit = hist.counts, hist.unit_magnitude
    shift = hist.sub_bucket_half_count_magnitude + 1 + unit
    mask, half_mag = hist.sub_bucket_mask, hist.sub_bucket_half_count_magnitude
    half = hist.sub_bucket_half_count
    for ns in nanoseconds:
        v = ns // 1000
        v = LOWEST_US if v < LOWEST_US else HIGHEST_US if v > HIGHEST_US else v
        bucket = (v | mask).bit_length() - shift
        counts[((bucket + 1) << half_mag) + (v >> (bucket + unit)) - half] += 1
    hist.total_count += len(nanoseconds)
    low = min(max(min(nanoseconds) // 1000, LOWEST_US), HIGHEST_US)
    high = min(max(max(nanoseconds) // 1000, LOWEST_US), HIGHEST_US)
    hist.min_value = min(hist.min_value, low)
    hist.max_value = max(hist.max_value, high)


@dataclass(frozen=True)
class Latency:
    """Milliseconds. count == 0 means nothing was measured in the window."""

    count: int = 0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0

    @classmethod
    def of(cls, hist: HdrHistogram) -> "Latency":
        if hist.get_total_count() == 0:
            return cls()
        pct = hist.get_percentile_to_value_dict([50, 95, 99])
        return cls(
            count=hist.get_total_count(),
            p50=pct[50] / 1000,
            p95=pct[95] / 1000,
            p99=pct[99] / 1000,
            max=hist.get_max_value() / 1000,
        )


@dataclass(frozen=True)
class Event:
    """Something that happened during a run: a fault, a state change, an error, a phase."""

    t: float  # seconds since the run started
    kind: str  # fault | state | error | phase | command
    message: str
    broker: str | None = None


@dataclass(frozen=True)
class SubscriberSnapshot:
    """One pub-sub subscription as the live views show it, twice a second."""

    name: str
    consume_rate: float = 0.0  # processed msgs/s in the last interval
    lag: int | None = None  # its backlog, as the broker reports it
    e2e: Latency = field(default_factory=Latency)
    ledger: LedgerCounts = field(default_factory=LedgerCounts)
    stream: StreamFigures | None = None  # its own feature store's, with a [stream] stage


@dataclass(frozen=True)
class RequestFigures:
    """Request-reply as the live views show it: the round trip over the last interval,
    and the requests' counts so far."""

    round_trip: Latency = field(default_factory=Latency)
    replied: int = 0
    timed_out: int = 0
    late_replies: int = 0
    held_back: int = 0


@dataclass(frozen=True)
class BrokerSnapshot:
    broker: str
    phase: str  # a lab.phases.Phase
    state: str  # the runtime's view: healthy, killed, paused, ...
    producers: int = 0
    consumers: int = 0
    target_rate: float = 0.0  # msgs/s the profile asks for now
    produce_rate: float = 0.0  # acked msgs/s in the last interval
    consume_rate: float = 0.0  # processed msgs/s in the last interval
    produce_mbps: float = 0.0
    consume_mbps: float = 0.0
    backlog: int = 0  # messages due by the schedule but not sent yet
    lag: int | None = None  # as the broker reports it
    dead_letters: int | None = None
    retention_dropped: int | None = None
    publish: Latency = field(default_factory=Latency)  # intended send -> broker ack
    e2e: Latency = field(default_factory=Latency)  # intended send -> consumer receipt
    ledger: LedgerCounts = field(default_factory=LedgerCounts)
    errors: int = 0
    last_error: str = ""
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    # Network faults in force: action -> its arguments ({"latency": {"ms": 200, ...}}).
    network: dict[str, dict[str, float]] = field(default_factory=dict)
    stream: StreamFigures | None = None  # the [stream] stage's, when the recipe has one
    # Pub-sub: each subscription (the ledger above is their sum: each is owed every message).
    subscribers: tuple[SubscriberSnapshot, ...] = ()
    requests: RequestFigures | None = None  # request-reply runs only

    def to_dict(self) -> dict:
        return asdict(self)

    def point(self, t: float) -> dict:
        """This snapshot as one point of the run's time series (results, charts, replay)."""
        point = {
            "t": round(t, 3),
            "phase": self.phase,
            "state": self.state,
            "target_rate": self.target_rate,
            "produce_rate": self.produce_rate,
            "consume_rate": self.consume_rate,
            "lag": self.lag,
            "backlog": self.backlog,
            "publish_p50_ms": self.publish.p50,
            "publish_p99_ms": self.publish.p99,
            "e2e_p50_ms": self.e2e.p50,
            "e2e_p99_ms": self.e2e.p99,
            "acked": self.ledger.acked,
            "delivered": self.ledger.delivered,
            "in_flight": self.ledger.in_flight,
            "duplicates": self.ledger.duplicates,
            "lost": self.ledger.lost,
            "dead_lettered": self.ledger.dead_lettered,
            "retention_dropped": self.ledger.retention_dropped,
            "producers": self.producers,
            "consumers": self.consumers,
            "errors": self.errors,
            "cpu_percent": self.cpu_percent,
            "rss_bytes": self.rss_bytes,
            "network": self.network,
        }
        if self.stream is not None:
            # The traffic-peak lesson: both climb with the backlog (recipes/features-peak.toml).
            point["freshness_p99_ms"] = self.stream.freshness_p99_ms
            point["trigger_p99_ms"] = self.stream.trigger_p99_ms
        if self.requests is not None:
            r = self.requests
            point["round_trip_p50_ms"] = r.round_trip.p50
            point["round_trip_p99_ms"] = r.round_trip.p99
            point["replied"] = r.replied
            point["timed_out"] = r.timed_out
        return point


@dataclass(frozen=True)
class Snapshot:
    run_id: str
    recipe: str
    mode: str
    seq: int
    t: float  # seconds since the run started
    duration: float
    phase: str  # the run's: starting | running | draining | done (lab.phases)
    brokers: tuple[BrokerSnapshot, ...]
    events: tuple[Event, ...] = ()  # new since the previous snapshot

    def broker(self, name: str) -> BrokerSnapshot | None:
        return next((b for b in self.brokers if b.broker == name), None)

    @property
    def done(self) -> bool:
        return self.phase == Phase.DONE
