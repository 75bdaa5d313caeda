"""Rate profiles: the open-loop schedule has the shape the recipe describes."""

from collections import Counter

import pytest

from lab.engine.pacing import TICK_NS, Pacer, rate_function
from lab.recipes.model import Rate

SECOND = 1_000_000_000


def per_second(rate: Rate, duration: float, share: float = 1.0) -> list[int]:
    """Run a pacer over simulated time and count intended sends per second."""
    pacer = Pacer(rate_function(rate, duration), t0_ns=0, duration=duration, share=share)
    counts: Counter = Counter()
    now = 0
    while not pacer.finished:
        now += SECOND // 100
        for intended in pacer.due(now, 100_000):
            counts[intended // SECOND] += 1
    return [counts[s] for s in range(int(duration))]


def test_steady():
    assert per_second(Rate(rate=200), 5) == [200] * 5


def test_two_producers_share_the_rate():
    assert per_second(Rate(rate=200), 3, share=0.5) == [100] * 3


def test_ramp():
    counts = per_second(Rate(profile="ramp", rate=100, to=1000), 10)
    assert counts == sorted(counts)
    assert counts[0] == pytest.approx(145, abs=10) and counts[-1] == pytest.approx(955, abs=10)


def test_spike():
    counts = per_second(Rate(profile="spike", rate=100, peak=1000, start=3, length=2), 8)
    assert counts == [100, 100, 100, 1000, 1000, 100, 100, 100]


def test_curve_keeps_the_mean_and_the_shape():
    counts = per_second(Rate(profile="curve", rate=100, curve=(7, 1, 1, 1, 1, 1, 1, 1)), 8)
    assert sum(counts) == pytest.approx(800, abs=2)
    assert counts[0] == pytest.approx(400, abs=2)  # half of the day in the first eighth
    assert counts[1] == pytest.approx(57, abs=2)


def test_multiplier_and_burst():
    pacer = Pacer(rate_function(Rate(rate=100), 10), t0_ns=0, duration=10, share=1)
    assert len(pacer.due(SECOND - 1, 10_000)) == 100
    pacer.multiplier = 10
    assert len(pacer.due(2 * SECOND - 1, 10_000)) == pytest.approx(1000, abs=2)
    pacer.burst(50, 2 * SECOND)
    assert len(pacer.due(2 * SECOND, 10_000)) == 50 + 1


def test_behind_counts_what_is_late():
    pacer = Pacer(rate_function(Rate(rate=1000), 10), t0_ns=0, duration=10, share=1)
    pacer.due(SECOND, 10)  # took only 10 of the 1001 due
    assert pacer.behind(SECOND) == pytest.approx(991, abs=2)


def test_a_schedule_that_ends_a_fraction_below_its_end_finishes():
    """150/s for 12 s leaves the float schedule a hair under its end: it still ends."""
    pacer = Pacer(rate_function(Rate(rate=150), 12.0), t0_ns=0, duration=12.0, share=1)
    sent = len(pacer.due(13 * SECOND, 100_000))
    assert sent == 1800
    assert pacer.finished


def test_the_schedule_does_not_drift_on_a_real_clock():
    """Monotonic time after hours of uptime is about 1e13 ns; the schedule is kept
    relative to t0 so float rounding cannot add a message at the end."""
    t0 = 11_633_423_860_698
    pacer = Pacer(rate_function(Rate(rate=150), 12.0), t0_ns=t0, duration=12.0, share=1)
    now, sent = t0, 0
    while not pacer.finished:
        now += 2_345_678
        sent += len(pacer.due(now, 1000))
    assert sent == 1800


def test_a_paced_loop_wakes_at_most_once_per_tick():
    """At 10k msgs/s the next message is 0.1 ms away: the loop waits out the tick instead,
    and then sends the ten that fell due as one batch."""
    pacer = Pacer(rate_function(Rate(rate=10_000), 10), t0_ns=0, duration=10, share=1)
    woke = SECOND
    pacer.due(woke, 100_000)
    assert 0 < pacer.wait_s(woke) < 0.001
    assert pacer.pause_s(woke, woke) == pytest.approx(TICK_NS / 1e9)
    assert pacer.pause_s(woke, woke + TICK_NS // 4) == pytest.approx(0.75 * TICK_NS / 1e9)
    assert len(pacer.due(woke + TICK_NS, 10_000)) == 10


def test_a_paced_loop_waits_for_a_message_further_away_than_a_tick():
    pacer = Pacer(rate_function(Rate(rate=100), 10), t0_ns=0, duration=10, share=1)
    pacer.due(SECOND, 100_000)
    assert pacer.pause_s(SECOND, SECOND) == pytest.approx(0.01, abs=1e-6)
    assert pacer.pause_s(SECOND, SECOND, longest=0.005) == 0.005


def test_a_turn_that_took_a_tick_does_not_wait():
    """A slow send (an fsync) already spent the tick: what is due now goes at once."""
    pacer = Pacer(rate_function(Rate(rate=10_000), 10), t0_ns=0, duration=10, share=1)
    pacer.due(SECOND, 100_000)
    assert pacer.pause_s(SECOND, SECOND + 3 * TICK_NS) == 0.0
