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

PATTERNS = ("work-queue",)
PLANNED_PATTERNS = ("pub-sub", "request-reply", "fire-and-forget")
PROFILES = ("steady", "ramp", "spike", "curve")
SIZE_DISTRIBUTIONS = ("fixed", "uniform")
DURABILITY = ("fast", "safe")


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
    retention: Retention = _f(Retention())
    faults: tuple[Fault, ...] = _f(())
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
