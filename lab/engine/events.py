"""A run's event log: faults, state changes, errors and phases, in the order they came.

Any of the session's threads may add to it, some while holding the session's lock, so it
has a lock of its own."""

import threading
from collections.abc import Callable

from lab.metrics import Event


class EventLog:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock  # seconds since the run started
        self._lock = threading.Lock()
        self.events: list[Event] = []
        self._unsent: list[Event] = []

    def say(self, kind: str, message: str, broker: str | None = None) -> None:
        event = Event(round(self._clock(), 3), kind, message, broker)
        with self._lock:
            self.events.append(event)
            self._unsent.append(event)

    def take_new(self) -> tuple[Event, ...]:
        """The events since the previous call: each Snapshot carries the new ones."""
        with self._lock:
            new, self._unsent = tuple(self._unsent), []
        return new

    def all(self) -> list[Event]:
        with self._lock:
            return list(self.events)
