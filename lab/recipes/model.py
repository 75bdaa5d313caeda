"""A workload recipe: what to send, how fast, to whom, and what happens to it.

Frozen dataclasses so a recipe can be handed to worker processes and recorded in results
exactly as it ran. Every field has a default; lab/recipes/parse.py reads TOML into these.
Field metadata drives validation: `choices`, `min`, `max`, `unit` ("s" or "bytes").
A broker's own section ([kafka], [redis], ...) is a dataclass of its package, made with
`recipe_field` like these; the parser finds it through the broker registry.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PATTERNS = ("work-queue", "pub-sub", "fire-and-forget", "request-reply")
REQUEST_MODES = ("sync", "async")
PROFILES = ("steady", "ramp", "spike", "curve")
SIZE_DISTRIBUTIONS = ("fixed", "uniform")
DURABILITY = ("fast", "safe")
POLLING = ("long", "short")
WINDOW_KINDS = ("", "tumbling", "hopping")
TRIGGER_ACTIONS = ("", "alert", "command")
STATISTICS = ("count", "sum")
KEY_SKEWS = ("zipf", "uniform")
VALUE_KINDS = ("amount", "reading", "like")


def recipe_field(default: object, **meta: object) -> Any:
    """A recipe field: its default and what the parser checks (choices, min, max, unit)."""
    if isinstance(default, list | tuple | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


_f = recipe_field


@dataclass(frozen=True)
class Rate:
    """Messages per second over the run, across all producers of one broker.

    steady: `rate` throughout. ramp: `rate` rising (or falling) linearly to `to`.
    spike: `rate`, and `peak` from `start` for `length` seconds.
    curve: `rate` is the MEAN rate; `curve` gives relative weights of equal time slices,
    so [7, 1, 1, 1, 1, 1, 1, 1] puts half of all messages into the first eighth.
    """

    profile: str = _f("steady", choices=PROFILES)
    rate: float = _f(1000.0, min=0.001, max=10_000_000)
    to: float = _f(0.0, min=0, max=10_000_000)
    peak: float = _f(0.0, min=0, max=10_000_000)
    start: float = _f(0.0, min=0, unit="s")
    length: float = _f(0.0, min=0, unit="s")
    curve: tuple[float, ...] = _f((), min=0)


@dataclass(frozen=True)
class MessageSize:
    distribution: str = _f("fixed", choices=SIZE_DISTRIBUTIONS)
    size: int = _f(100, min=32, max=8 * 2**20, unit="bytes")  # fixed
    min: int = _f(32, min=32, max=8 * 2**20, unit="bytes")  # uniform
    max: int = _f(1024, min=32, max=8 * 2**20, unit="bytes")


@dataclass(frozen=True)
class Producers:
    count: int = _f(1, min=1, max=64)


@dataclass(frozen=True)
class Consumers:
    count: int = _f(1, min=0, max=64)
    # Simulated work per message; 1 / processing_time is one consumer's capacity.
    processing_time: float = _f(0.0, min=0, max=60, unit="s")
    # Messages a consumer may hold unacknowledged (RabbitMQ prefetch, batch size elsewhere).
    prefetch: int = _f(100, min=1, max=100_000)
    # long: the broker holds a receive until a message is there (SQS WaitTimeSeconds, Redis
    # BLOCK, LISTEN/NOTIFY, Kafka's fetch wait, a push consumer). short: ask without
    # waiting, once every poll_interval, the way a database is polled as a queue.
    poll: str = _f("long", choices=POLLING)
    poll_interval: float = _f(1.0, min=0.001, max=3600, unit="s")


@dataclass(frozen=True)
class Subscribers:
    """[subscribers], pub-sub only: `count` independent subscriptions, each receiving
    every message with its own [consumers]. The last `slow` of them take
    `slow_processing_time` per message, so a slow subscriber shows next to fast ones."""

    count: int = _f(1, min=1, max=16)
    slow: int = _f(0, min=0, max=16)
    slow_processing_time: float = _f(0.0, min=0, max=60, unit="s")


@dataclass(frozen=True)
class Requests:
    """[requests], request-reply only: producers are requesters and consumers responders.
    sync: one request outstanding per requester, so throughput is requesters / round
    trip whatever the rate asks; async: up to `window` outstanding. A request the
    schedule wants while the window is full is not sent (counted as held back). A reply
    later than `timeout` counts the request as timed out (and the reply as late)."""

    mode: str = _f("sync", choices=REQUEST_MODES)
    window: int = _f(100, min=1, max=100_000)
    timeout: float = _f(5.0, min=0.001, max=3600, unit="s")

    @property
    def outstanding(self) -> int:
        """The most requests one requester waits on at once."""
        return 1 if self.mode == "sync" else self.window


@dataclass(frozen=True)
class Retention:
    """0 means no limit."""

    max_age: float = _f(0.0, min=0, unit="s")
    max_messages: int = _f(0, min=0)
    max_bytes: int = _f(0, min=0, unit="bytes")


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: at `at` seconds, do `action` (to `broker`, or all brokers)."""

    at: float = _f(0.0, min=0, unit="s")
    action: str = _f("")
    broker: str = _f("")
    args: dict = _f({})


@dataclass(frozen=True)
class Windows:
    """[stream.windows]: aggregates per key over event time, aligned to the run's clock.
    tumbling: back-to-back windows of `size`; hopping: windows of `size` starting every
    `hop` (a sliding window sampled every hop). An event that arrives more than
    `allowed_lateness` after its window ended is late: counted, never added."""

    kind: str = _f("", choices=WINDOW_KINDS)  # "": no windows
    size: float = _f(10.0, min=0.001, max=24 * 3600, unit="s")
    hop: float = _f(0.0, min=0, max=24 * 3600, unit="s")  # hopping only
    allowed_lateness: float = _f(2.0, min=0, max=24 * 3600, unit="s")


@dataclass(frozen=True)
class Triggers:
    """[stream.triggers]: when a key's window `statistic` first exceeds `threshold`,
    publish an alert to the run's alerts topic on the same broker, or run `command`;
    at most `rate_limit` actions per second per consumer (the rest are suppressed)."""

    action: str = _f("", choices=TRIGGER_ACTIONS)  # "": no triggers
    statistic: str = _f("count", choices=STATISTICS)
    threshold: float = _f(5.0, min=0)
    command: str = _f("")
    rate_limit: float = _f(50.0, min=0.001, max=1_000_000)


@dataclass(frozen=True)
class Stream:
    """[stream]: every message is also an event with a key and a value, derived from
    (seed, producer, seq) so the lab knows the truth (lab/stream). Consumers keep a
    materialized view, windows and triggers in `view_store` (a store the lab runs;
    "": no stream stage), naively or deduplicated by message id."""

    view_store: str = _f("")
    seed: int = _f(1, min=0, max=2**63 - 1)
    keys: int = _f(1000, min=1, max=1_000_000)
    key_skew: str = _f("zipf", choices=KEY_SKEWS)
    zipf_s: float = _f(1.1, min=0.01, max=10)
    # amount: lognormal around value_mean; reading: normal (value_mean, value_sd);
    # like: +1 with probability like_share, else -1. Kept in hundredths, as integers.
    values: str = _f("amount", choices=VALUE_KINDS)
    value_mean: float = _f(50.0, min=-1e9, max=1e9)
    value_sd: float = _f(10.0, min=0, max=1e9)
    like_share: float = _f(0.7, min=0, max=1)
    view: bool = _f(True)
    dedupe: bool = _f(False)
    windows: Windows = _f(Windows())
    triggers: Triggers = _f(Triggers())

    @property
    def on(self) -> bool:
        return bool(self.view_store)


@dataclass(frozen=True)
class Recipe:
    name: str = _f("unnamed")
    description: str = _f("")
    pattern: str = _f("work-queue", choices=PATTERNS)
    # Empty: every broker of the registry's default set (the parser fills them in).
    brokers: tuple[str, ...] = _f(())
    duration: float = _f(20.0, min=1, max=24 * 3600, unit="s")
    warmup: float = _f(2.0, min=0, unit="s")
    # After the producers stop, how long consumers may take to catch up; also how long
    # producers still behind (after an outage) may go on sending past the end.
    drain_timeout: float = _f(30.0, min=0, unit="s")
    durability: str = _f("safe", choices=DURABILITY)
    # Clients reach brokers through the lab's chaos proxy, so network faults can be
    # injected at any time. It costs CPU on loopback: benchmarks of the brokers alone
    # turn it off (and then network faults are not available).
    chaos_proxy: bool = _f(True)
    partitions: int = _f(4, min=1, max=1000)
    poison_share: float = _f(0.0, min=0, max=1)
    max_attempts: int = _f(3, min=1, max=100)
    rate: Rate = _f(Rate())
    message: MessageSize = _f(MessageSize())
    producers: Producers = _f(Producers())
    consumers: Consumers = _f(Consumers())
    subscribers: Subscribers = _f(Subscribers())
    requests: Requests = _f(Requests())
    retention: Retention = _f(Retention())
    faults: tuple[Fault, ...] = _f(())
    stream: Stream = _f(Stream())
    # Each broker's own section, by broker name: [kafka] client = "kafka-python" is
    # options["kafka"].client. Filled by the parser for every broker it knows.
    options: dict[str, Any] = _f({})

    def to_dict(self) -> dict:
        """The recipe as a recipe file would hold it (broker sections at the top level),
        which the parser reads back to the same recipe."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        options = data.pop("options")
        out = {k: _plain(v) for k, v in data.items()}
        out.update({name: _plain(section) for name, section in options.items()})
        return out

    def subscriber_names(self) -> tuple[str, ...]:
        """The run's subscriptions: ("",) outside pub-sub (one group, no name); in pub-sub
        sub-1, sub-2, ... and then slow-1, ... for the slow ones."""
        if self.pattern != "pub-sub":
            return ("",)
        s = self.subscribers
        fast = [f"sub-{i + 1}" for i in range(s.count - s.slow)]
        return (*fast, *(f"slow-{i + 1}" for i in range(s.slow)))

    def processing_time(self, subscriber: str) -> float:
        """Simulated work per message for this subscriber's consumers."""
        if subscriber.startswith("slow-"):
            return self.subscribers.slow_processing_time
        return self.consumers.processing_time

    @property
    def forget(self) -> bool:
        """Fire-and-forget: producers wait for no acknowledgement, so the ledger counts
        from what was sent, and losses are the pattern's, not a broken promise."""
        return self.pattern == "fire-and-forget"

    @property
    def request_reply(self) -> bool:
        return self.pattern == "request-reply"

    @property
    def mean_size(self) -> float:
        m = self.message
        return m.size if m.distribution == "fixed" else (m.min + m.max) / 2


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
