"""The requests' own ledger in a request-reply run (the requesters' side, summed).

Every request a requester sent is, at the end, replied or timed out (a requester told to
stop counts those it still waited for as timed out): sent = replied + timed_out. A reply
after the timeout is late (its request stays timed out); a second reply to one request
(its responder crashed between replying and acking, and the broker redelivered) is a
duplicate. The request messages themselves are in the broker's ledger like any others.
"""

from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from lab.engine.reporting import Report
from lab.metrics import Latency, RequestFigures, new_histogram
from lab.results import latency_summary


@dataclass
class RequestTally:
    replied: int = 0
    timed_out: int = 0
    late_replies: int = 0
    duplicate_replies: int = 0
    held_back: int = 0
    round_trip_window: HdrHistogram = field(default_factory=new_histogram)
    round_trips: HdrHistogram = field(default_factory=new_histogram)  # after warm-up

    def fold(self, r: Report, past_warmup: bool) -> None:
        """A requester's report."""
        self.replied += r.replied
        self.timed_out += r.timed_out
        self.late_replies += r.late_replies
        self.duplicate_replies += r.duplicate_replies
        self.held_back += r.held_back
        if r.round_trip_hist:
            delta = HdrHistogram.decode(r.round_trip_hist)
            self.round_trip_window.add(delta)
            if past_warmup:
                self.round_trips.add(delta)

    def figures(self) -> RequestFigures:
        """The live view's figures; the round-trip window starts again."""
        round_trip = Latency.of(self.round_trip_window)
        self.round_trip_window.reset()
        return RequestFigures(
            round_trip, self.replied, self.timed_out, self.late_replies, self.held_back
        )

    def summary(self, sent: int) -> dict:
        """The summary's request-reply fields (results JSON: round_trip_ms, timed_out...)."""
        round_trip = latency_summary(self.round_trips)
        count = self.round_trips.get_total_count()
        round_trip["mean"] = self.round_trips.get_mean_value() / 1000 if count else None
        return {
            "round_trip_ms": round_trip,
            "replied": self.replied,
            "timed_out": self.timed_out,
            "late_replies": self.late_replies,
            "duplicate_replies": self.duplicate_replies,
            "held_back": self.held_back,
            "requests_add_up": sent == self.replied + self.timed_out,
        }
