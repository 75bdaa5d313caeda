"""Open-loop pacing: every message has an intended send time from the rate profile.

Latency is measured from the intended time, so a broker that stalls the producer shows up
as latency (and, after the stall, as a burst of late messages), never as a quietly lower
rate. This is what OpenMessaging Benchmark does to avoid coordinated omission.
"""

import random
from collections.abc import Callable

from lab.recipes.model import Rate


def rate_function(rate: Rate, duration: float) -> Callable[[float], float]:
    """Messages per second at `t` seconds into the run (for all producers together)."""
    if rate.profile == "steady":
        return lambda t: rate.rate
    if rate.profile == "ramp":
        return lambda t: rate.rate + (rate.to - rate.rate) * min(max(t / duration, 0.0), 1.0)
    if rate.profile == "spike":
        end = rate.start + rate.length
        return lambda t: rate.peak if rate.start <= t < end else rate.rate
    if rate.profile == "curve":
        weights = rate.curve
        mean = sum(weights) / len(weights)
        slice_len = duration / len(weights)
        scaled = [rate.rate * w / mean for w in weights]
        return lambda t: scaled[min(int(max(t, 0.0) / slice_len), len(scaled) - 1)]
    raise ValueError(f"unknown rate profile {rate.profile}")


TICK_NS = 1_000_000  # a paced loop wakes at most this often when nothing is late


class Pacer:
    """Intended send times for one producer that carries `share` of the total rate.

    `multiplier` (peaks) and `bursts` change the schedule while it runs. Rates are
    re-read every `step_ns`, which keeps the per-message cost to an addition. The
    schedule is kept as a float offset from t0, not as absolute monotonic nanoseconds:
    near 1e13 ns (hours of uptime) a float's rounding, added up over thousands of
    messages, moves the last one across the end of the run.
    """

    EPSILON_NS = 0.5  # float error allowed at the end of the run; intervals are far larger

    def __init__(
        self,
        rate_at: Callable[[float], float],
        t0_ns: int,
        duration: float,
        share: float,
        step_ns: int = 10_000_000,
    ) -> None:
        self.rate_at = rate_at
        self.t0_ns = t0_ns
        self.length_ns = duration * 1e9
        self.end_ns = t0_ns + int(self.length_ns)
        self.share = share
        self.multiplier = 1.0
        self.step_ns = step_ns
        self.offset = 0.0  # of the next intended send, from t0
        self._interval_ns = 0.0
        self._rate_valid_until = 0.0  # offset
        self._bursts: list[int] = []  # extra messages due at once, at their enqueue time

    @property
    def next_ns(self) -> int:
        return self.t0_ns + round(self.offset)

    def next_due(self) -> int:
        """The intended time of the next message this schedule hands out."""
        return min(self._bursts[0], self.next_ns) if self._bursts else self.next_ns

    def second(self, now_ns: int) -> int:
        """Whole seconds since the run's clock zero."""
        return (now_ns - self.t0_ns) // 1_000_000_000

    def burst(self, count: int, now_ns: int) -> None:
        self._bursts.extend([now_ns] * count)

    @property
    def finished(self) -> bool:
        return self.offset >= self.length_ns - self.EPSILON_NS and not self._bursts

    def _refresh(self, offset: float) -> None:
        rate = self.rate_at(offset / 1e9) * self.share * self.multiplier
        self._interval_ns = 1e9 / rate if rate > 0 else float("inf")
        self._rate_valid_until = offset + self.step_ns

    def due(self, now_ns: int, limit: int) -> list[int]:
        """Intended times that are due by `now_ns`, oldest first, at most `limit`."""
        out = self._bursts[:limit]
        del self._bursts[:limit]
        offset, t0 = self.offset, self.t0_ns
        until = min(now_ns - t0, self.length_ns - self.EPSILON_NS)
        while offset <= until and len(out) < limit:
            if offset >= self._rate_valid_until:
                self._refresh(offset)
                if self._interval_ns == float("inf"):
                    offset = self._rate_valid_until  # zero rate: look again one step later
                    continue
            out.append(t0 + round(offset))
            offset += self._interval_ns
        self.offset = offset
        return out

    def behind(self, now_ns: int) -> int:
        """Messages the schedule wanted sent by now that have not been taken yet."""
        late = min(now_ns - self.t0_ns, self.length_ns) - self.offset
        if late <= 0 or not self._interval_ns or self._interval_ns == float("inf"):
            return len(self._bursts)
        return int(late / self._interval_ns) + len(self._bursts)

    def wait_s(self, now_ns: int) -> float:
        """Seconds until the next message is due (0 if one is due now)."""
        if self._bursts:
            return 0.0
        return max(0.0, (self.t0_ns + min(self.offset, self.length_ns) - now_ns) / 1e9)

    def pause_s(self, woke_ns: int, now_ns: int, longest: float = 0.05) -> float:
        """How long a paced loop that woke at `woke_ns` waits now, before its next due().

        Until the next message is due, but it wakes at most once per TICK_NS: at 10k
        msgs/s the next message is always under a millisecond away, and waiting for it
        alone (a client's poll rounds that down to 0) spins a core to send one message
        per turn. Whatever fell due in the meantime goes out as one batch; latency counts
        from each message's intended time, so the tick shows up in it, honestly. A turn
        that already took a tick (a slow send) does not wait at all.
        """
        if self._bursts:
            return 0.0
        due_ns = self.t0_ns + min(self.offset, self.length_ns)
        return min(longest, max(0.0, (max(woke_ns + TICK_NS, due_ns) - now_ns) / 1e9))


def message_sizes(
    distribution: str, size: int, low: int, high: int, seed: int
) -> Callable[[], int]:
    if distribution == "fixed":
        return lambda: size
    rng = random.Random(seed)
    return lambda: rng.randint(low, high)
