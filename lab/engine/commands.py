"""Commands a UI sends to a running Session. `broker=None` means every broker in the run."""

from dataclasses import dataclass


@dataclass(frozen=True)
class SetRate:
    """Multiply the recipe's rate profile by `multiplier` from now on."""

    multiplier: float
    broker: str | None = None


@dataclass(frozen=True)
class Burst:
    """Send `count` extra messages at once."""

    count: int
    broker: str | None = None


@dataclass(frozen=True)
class AddConsumer:
    broker: str | None = None


@dataclass(frozen=True)
class RemoveConsumer:
    broker: str | None = None


@dataclass(frozen=True)
class Stop:
    """End the run early: producers stop now, consumers drain what was sent."""


Command = SetRate | Burst | AddConsumer | RemoveConsumer | Stop
