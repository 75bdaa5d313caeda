"""The backlog a recipe should build, from the recipe alone: its rate profile over its
duration against its consumers' capacity (count / processing_time). The report draws it
beside the lag the brokers reported, for any run whose consumers had a processing time."""

from collections.abc import Mapping

from lab.capacity import fluid

RAMP_STEPS = 100  # a ramp is cut into this many flat steps; exact enough to draw


def consumer_capacity(recipe: Mapping) -> float | None:
    """Messages per second the consumers can process, or None when it is not bounded by
    a processing time (then there is nothing to predict)."""
    consumers = recipe.get("consumers") or {}
    count, work = consumers.get("count", 0), consumers.get("processing_time", 0.0)
    if not count or not work or work <= 0:
        return None
    return count / work


def rate_segments(recipe: Mapping) -> list[fluid.Segment]:
    """The recipe's rate profile as flat segments; the same shapes as lab.engine.pacing."""
    rate, duration = recipe["rate"], float(recipe["duration"])
    base = float(rate["rate"])
    profile = rate.get("profile", "steady")
    if profile == "curve" and rate.get("curve"):
        weights = [float(w) for w in rate["curve"]]
        mean = sum(weights) / len(weights)
        return [(duration / len(weights), base * w / mean) for w in weights]
    if profile == "spike":
        start = min(float(rate["start"]), duration)
        end = min(start + float(rate["length"]), duration)
        return [(start, base), (end - start, float(rate["peak"])), (duration - end, base)]
    if profile == "ramp":
        step, to = duration / RAMP_STEPS, float(rate["to"])
        return [(step, base + (to - base) * (i + 0.5) / RAMP_STEPS) for i in range(RAMP_STEPS)]
    return [(duration, base)]


def predicted_backlog(recipe: Mapping) -> fluid.Backlog | None:
    """Seconds from the producers' start -> messages waiting; None without a capacity."""
    capacity = consumer_capacity(recipe)
    if capacity is None:
        return None
    try:
        segments = rate_segments(recipe)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None  # a recipe from an older or foreign file: no prediction, not a failure
    return fluid.backlog(segments, capacity, drain_tail=True)
