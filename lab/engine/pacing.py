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


class Pacer:
    """Intended send times for one producer that carries `share` of the total rate.

    `multiplier` (peaks) and `bursts` change the schedule while it runs. Rates are
    re-read every `step_ns`, which keeps the per-message cost to an addition.
    """

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
        self.end_ns = t0_ns + int(duration * 1e9)
        self.share = share
        self.multiplier = 1.0
        self.step_ns = step_ns
        self.next_ns = t0_ns
        self._interval_ns = 0.0
        self._rate_valid_until = 0
        self._bursts: list[int] = []  # extra messages due at once, at their enqueue time

    def second(self, now_ns: int) -> int:
        """Whole seconds since the run's clock zero."""
        return (now_ns - self.t0_ns) // 1_000_000_000

    def burst(self, count: int, now_ns: int) -> None:
        self._bursts.extend([now_ns] * count)

    @property
    def finished(self) -> bool:
        # The schedule is kept in float nanoseconds; a message is due while its time is at
        # most end_ns - 1 (the same test as due()), so a float a fraction below end_ns
        # still counts as finished.
        return self.next_ns > self.end_ns - 1 and not self._bursts

    def _refresh(self, at_ns: int) -> None:
        rate = self.rate_at((at_ns - self.t0_ns) / 1e9) * self.share * self.multiplier
        self._interval_ns = 1e9 / rate if rate > 0 else float("inf")
        self._rate_valid_until = at_ns + self.step_ns

    def due(self, now_ns: int, limit: int) -> list[int]:
        """Intended times that are due by `now_ns`, oldest first, at most `limit`."""
        out = self._bursts[:limit]
        del self._bursts[:limit]
        nxt = self.next_ns
        end = min(now_ns, self.end_ns - 1)
        while nxt <= end and len(out) < limit:
            if nxt >= self._rate_valid_until:
                self._refresh(int(nxt))
                if self._interval_ns == float("inf"):
                    nxt = self._rate_valid_until  # zero rate: look again one step later
                    continue
            out.append(int(nxt))
            nxt += self._interval_ns
        self.next_ns = nxt
        return out

    def behind(self, now_ns: int) -> int:
        """Messages the schedule wanted sent by now that have not been taken yet."""
        late = min(now_ns, self.end_ns) - self.next_ns
        if late <= 0 or not self._interval_ns or self._interval_ns == float("inf"):
            return len(self._bursts)
        return int(late / self._interval_ns) + len(self._bursts)

    def wait_s(self, now_ns: int) -> float:
        """Seconds until the next message is due (0 if one is due now)."""
        if self._bursts:
            return 0.0
        return max(0.0, (min(self.next_ns, self.end_ns) - now_ns) / 1e9)


def message_sizes(
    distribution: str, size: int, low: int, high: int, seed: int
) -> Callable[[], int]:
    if distribution == "fixed":
        return lambda: size
    rng = random.Random(seed)
    return lambda: rng.randint(low, high)
