"""What a UI sends to a running Session: a Fault (lab/faults), or Stop.

Peaks, bursts, rate changes and consumers added or removed are faults too (peak, burst,
rate, add-consumer, remove-consumer): one way to do each thing, whoever asks."""

from dataclasses import dataclass

from lab.faults import Fault


@dataclass(frozen=True)
class Stop:
    """End the run early: producers stop now, consumers drain what was sent."""

    broker: str | None = None  # None: every broker of the run


Command = Fault | Stop
