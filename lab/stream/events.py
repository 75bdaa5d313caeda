"""The event behind a lab message: its key and value, from (seed, producer, seq) alone.

A hash, not a random generator: the consumer that sees message (p, s) and the engine that
computes the truth for it must agree without either seeing the other's state, in any
order, in any process. Values are integers (hundredths for amounts and readings), so sums
are exact whatever order a store adds them in.
"""

import math
from array import array
from bisect import bisect_right
from statistics import NormalDist

from lab.recipes.model import Stream

MASK64 = (1 << 64) - 1
_UNIT = 1.0 / (1 << 53)
_NORMAL = NormalDist()
AMOUNT_SIGMA = 1.0  # of log(amount): card amounts spread over orders of magnitude


def _mix(x: int) -> int:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def _uniform(h: int) -> float:
    """A float in (0, 1) from 53 bits of h: never 0 or 1, so inv_cdf is always defined."""
    return ((h >> 11) + 0.5) * _UNIT


class EventSource:
    """key_of / value_of for one run's [stream] section."""

    def __init__(self, cfg: Stream) -> None:
        self.cfg = cfg
        self.seed = _mix(cfg.seed & MASK64)
        self.keys = cfg.keys
        self._cdf: array | None = None
        if cfg.key_skew == "zipf" and cfg.keys > 1:
            weights = [1.0 / (rank + 1) ** cfg.zipf_s for rank in range(cfg.keys)]
            total, acc = sum(weights), 0.0
            cdf = array("d")
            for w in weights:
                acc += w
                cdf.append(acc / total)
            self._cdf = cdf

    def event(self, producer: int, seq: int) -> tuple[int, int]:
        """(key, value) of message (producer, seq)."""
        h1 = _mix(self.seed ^ (producer << 40 | seq))
        h2 = _mix(h1)
        return self._key(h1), self._value(h2)

    def _key(self, h: int) -> int:
        if self._cdf is None:
            return (h >> 11) % self.keys
        # Rank 0 is the hottest key (the card used most, the busiest sensor).
        return min(bisect_right(self._cdf, _uniform(h)), self.keys - 1)

    def _value(self, h: int) -> int:
        cfg = self.cfg
        u = _uniform(h)
        if cfg.values == "like":
            return 1 if u < cfg.like_share else -1
        z = _NORMAL.inv_cdf(u)
        if cfg.values == "amount":
            # Lognormal with median value_mean: positive, long-tailed, like card amounts.
            median = max(cfg.value_mean, 0.01)
            return max(1, round(math.exp(math.log(median) + AMOUNT_SIGMA * z) * 100))
        return round((cfg.value_mean + cfg.value_sd * z) * 100)


def never_negative(cfg: Stream) -> bool:
    """Whether every value is >= 0, so a window's sum can only grow (a trigger on the
    sum then fires once, whatever order the events arrive in)."""
    return cfg.values == "amount"
