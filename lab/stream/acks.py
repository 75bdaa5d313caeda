"""The producer's part: the event time (intended send time) of every message it got an ack
for, so the truth can put every acked event in its window, also the ones never delivered.

Sent as packed (seq, intended ns) pairs every REPORT_EVERY seconds and before the
producer's final report: the pipe keeps them in order, so the engine has them all when
it reads "final".
"""

import time
from array import array
from collections.abc import Callable

from lab.brokers.contract import Ack, RunSpec

REPORT_EVERY = 0.25


class AckTimes:
    def __init__(self, post: Callable[[tuple], None]) -> None:
        self.post = post
        self.pairs = array("q")
        self.due = time.monotonic() + REPORT_EVERY

    @classmethod
    def for_run(cls, spec: RunSpec, post: Callable[[tuple], None]) -> "AckTimes | None":
        """None unless the recipe has a stream stage that needs event times (windows)."""
        stream = spec.recipe.stream
        return cls(post) if stream.on and stream.windows.kind else None

    def add(self, acks: list[Ack]) -> None:
        pairs = self.pairs
        for ack in acks:
            if ack.ok:
                pairs.append(ack.seq)
                pairs.append(ack.intended_ns)
        if pairs and time.monotonic() >= self.due:
            self.flush()

    def flush(self) -> None:
        self.due = time.monotonic() + REPORT_EVERY
        if self.pairs:
            self.post(("stream-acked", self.pairs.tobytes()))
            self.pairs = array("q")
