"""The fluid model of a queue: arrivals as a rate that changes by the hour, served at a fixed
capacity, the backlog as the area between the two.

Exact for rates that are constant over each segment (the backlog is then piecewise linear,
so its corners are all there is to plot). It ignores randomness: it says what a peak does to
a queue, and M/M/c (lab.capacity.mmc) says what chance does in the hours the workers keep up.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

Segment = tuple[float, float]  # (seconds it lasts, requests per second during it)


@dataclass(frozen=True)
class Backlog:
    points: list[tuple[float, float]]  # (seconds from the start, requests waiting): corners
    peak: float  # the most requests waiting at once
    peak_at: float  # when (seconds from the start)
    drained_at: float | None  # when the queue is first empty after the peak; None: never
    capacity: float  # requests per second served while there is a backlog

    @property
    def max_wait_s(self) -> float:
        """First in, first out: whoever arrives at the peak waits for all ahead of them."""
        return self.peak / self.capacity if self.capacity > 0 else float("inf")

    @property
    def drained_after_s(self) -> float | None:
        if self.drained_at is None:
            return None
        return max(0.0, self.drained_at - self.peak_at)


def backlog(segments: Sequence[Segment], capacity: float, drain_tail: bool = True) -> Backlog:
    """The backlog over `segments`, starting empty. With `drain_tail`, arrivals stop after
    the last segment and the curve goes on until the queue is empty."""
    t, q = 0.0, 0.0
    points = [(0.0, 0.0)]
    peak, peak_at = 0.0, 0.0
    for length, rate in segments:
        if length <= 0:
            continue
        net = rate - capacity
        if net < 0 and q > 0 and q / -net < length:
            # Empties inside the segment: a corner where it hits zero, then flat.
            t_empty = t + q / -net
            points.append((t_empty, 0.0))
            q = 0.0
        else:
            q = max(0.0, q + net * length)
        t += length
        points.append((t, q))
        if q > peak:
            peak, peak_at = q, t
    if drain_tail and q > 0 and capacity > 0:
        t += q / capacity
        points.append((t, 0.0))
        q = 0.0
    drained_at = next((pt for pt, pq in points if pt >= peak_at and pq == 0.0), None)
    return Backlog(_dedupe(points), peak, peak_at, drained_at, capacity)


def at(points: Sequence[tuple[float, float]], t: float) -> float:
    """The backlog at `t`, by linear interpolation between corners (0 outside them)."""
    for (t0, q0), (t1, q1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return q0 if t1 == t0 else q0 + (q1 - q0) * (t - t0) / (t1 - t0)
    return 0.0


def _dedupe(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Drop corners that are not corners: the middle of three points on one flat line."""
    out: list[tuple[float, float]] = []
    for p in points:
        if len(out) >= 2 and out[-1][1] == out[-2][1] == p[1]:
            out[-1] = p
        elif out and out[-1] == p:
            continue
        else:
            out.append(p)
    return out
