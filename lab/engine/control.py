"""What the engine tells a worker over its control pipe: one small type per command."""

from typing import NamedTuple


class Start(NamedTuple):
    """The run's clock zero (time.monotonic_ns, one clock for every process on the host)
    and the rate multiplier in force."""

    t0_ns: int
    multiplier: float


class Stop(NamedTuple):
    """Producers: finish; consumers: leave. Both send their final report."""


class SetMultiplier(NamedTuple):
    """Producers: multiply the rate profile by this from now on."""

    multiplier: float


class Burst(NamedTuple):
    """Producers: send this many extra messages at once."""

    count: int


class Slow(NamedTuple):
    """Consumers: multiply the recipe's processing time by this."""

    factor: float


class Crash(NamedTuple):
    """Consumers: SIGKILL yourself between receiving the next batch and acking it."""


class Assign(NamedTuple):
    """Consumers of a broker without consumer groups: read these partitions from now on."""

    partitions: tuple[int, ...]


Command = Start | Stop | SetMultiplier | Burst | Slow | Crash | Assign
