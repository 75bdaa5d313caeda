"""The producer's part: the event time (intended send time) of every message it got an ack
for, so the truth can put every acked event in its window, also the ones never delivered.

Sent as packed (seq, intended ns) pairs every REPORT_EVERY seconds and before the
producer's final report: the pipe keeps them in order, so the engine has them all when
it reads "final". Each report also carries the producer's resolved mark: every message
it will ever report acked with an intended time before the mark is in this report or an
earlier one (the oldest message still waiting for its ack, or else the next one due).
With every producer's mark past a window's end, the truth of that window is known while
the run goes on (lab/stream/live.py).
"""

import time
from array import array
from collections import deque
from collections.abc import Callable

from lab.brokers.contract import Ack, Outgoing, RunSpec

REPORT_EVERY = 0.25


class AckTimes:
    def __init__(self, post: Callable[[tuple], None]) -> None:
        self.post = post
        self.pairs = array("q")
        self.due = time.monotonic() + REPORT_EVERY
        self.waiting: deque[tuple[int, int]] = deque()  # (seq, intended ns), in send order
        self.answered: set[int] = set()  # seqs of `waiting` acked or failed, out of order
        self.next_due: Callable[[], int] | None = None  # the schedule's next intended time

    @classmethod
    def for_run(cls, spec: RunSpec, post: Callable[[tuple], None]) -> "AckTimes | None":
        """None unless the recipe has a stream stage that needs event times (windows)."""
        stream = spec.recipe.stream
        return cls(post) if stream.on and stream.windows.kind else None

    def sent(self, batch: list[Outgoing]) -> None:
        self.waiting.extend((m.seq, m.intended_ns) for m in batch)

    def add(self, acks: list[Ack]) -> None:
        pairs, answered = self.pairs, self.answered
        for ack in acks:
            answered.add(ack.seq)
            if ack.ok:
                pairs.append(ack.seq)
                pairs.append(ack.intended_ns)
        waiting = self.waiting
        while waiting and waiting[0][0] in answered:
            answered.discard(waiting.popleft()[0])
        if pairs and time.monotonic() >= self.due:
            self.flush()

    def tick(self) -> None:
        """The mark moves on while nothing is acked too (an idle schedule, a slow peak)."""
        if time.monotonic() >= self.due:
            self.flush()

    def resolved_ns(self) -> int | None:
        """None: nothing can be said yet (before the schedule starts)."""
        if self.waiting:
            return self.waiting[0][1]
        return self.next_due() if self.next_due else None

    def flush(self) -> None:
        self.due = time.monotonic() + REPORT_EVERY
        self.post(("stream-acked", (self.pairs.tobytes(), self.resolved_ns())))
        self.pairs = array("q")
