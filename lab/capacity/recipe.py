"""`lab capacity --recipe FILE`: the day as a recipe the lab can run, compressed in time.

Each working hour becomes `seconds_per_hour` seconds and every rate is multiplied by
`rate_scale`, the consumers' capacity too, so the shape of the backlog is the day's: it
peaks at the end of the same "hour" and drains in the same share of an hour. The numbers
of messages are the day's times rate_scale / (3600 / seconds_per_hour).
"""

import dataclasses
import math
from pathlib import Path

from lab.capacity import predict
from lab.capacity.model import HOUR_S, Workload
from lab.errors import LabError
from lab.recipes import parse
from lab.recipes.write import save

WORKER_RATE = 100.0  # msgs/s per consumer unless --rate-scale says otherwise
MAX_PEAK = 20_000.0  # msgs/s: past this the run measures the machine, not the model


def default_rate_scale(w: Workload) -> float:
    """One worker does WORKER_RATE msgs/s in the run: a 10 ms processing time."""
    return WORKER_RATE / w.server_rps


def recipe_data(
    w: Workload,
    name: str,
    seconds_per_hour: float = 10.0,
    rate_scale: float | None = None,
    message_bytes: int = 256,
) -> dict:
    """The recipe as the TOML tables of lab/recipes/model.py."""
    scale = rate_scale or default_rate_scale(w)
    hourly = w.hourly()
    mean_rate = w.requests_per_day / (w.working_hours * HOUR_S) * scale
    peak = max(hourly) / HOUR_S * scale
    if peak > MAX_PEAK:
        raise LabError(
            f"--rate-scale {scale:g} makes a peak of {peak:,.0f} msgs/s; keep it under "
            f"{MAX_PEAK:,.0f} with a smaller --rate-scale"
        )
    processing = 1.0 / (w.server_rps * scale)
    if processing > 60:
        raise LabError(f"--rate-scale {scale:g} makes each message take {processing:g} s; raise it")
    duration = w.working_hours * seconds_per_hour
    data = {
        "name": name,
        "description": (
            f"{w.users:,} users x {w.requests_per_user:g} requests, {w.hours[0]}:00 to "
            f"{w.hours[1]}:00, compressed to {seconds_per_hour:g} s an hour with rates x "
            f"{scale:g}; {w.workers} worker(s) at {w.server_rps:g} req/s each. Written by "
            "lab capacity --recipe."
        ),
        "duration": f"{duration:g}s",
        "warmup": "0s",
        "durability": "safe",
        "rate": {
            "profile": "curve",
            "rate": round(mean_rate, 6),
            # Relative weights of the hours; the engine scales them to the mean rate.
            "curve": [round(h / max(hourly), 6) for h in hourly],
        },
        "message": {"size": message_bytes},
        "producers": {"count": 1},
        "consumers": {
            "count": w.workers,
            "processing_time": f"{processing * 1000:g}ms",
            # A small prefetch keeps what waits in the broker, where its lag counts it.
            "prefetch": max(1, min(20, math.floor(0.1 / processing))),
        },
    }
    data["drain_timeout"] = f"{_drain_timeout(data):g}s"
    return data


def _drain_timeout(data: dict) -> float:
    """What is left at the end of the day, at the consumers' rate, with room to spare."""
    recipe = parse(data, f"recipe {data['name']}")
    duration = recipe.duration
    backlog = predict.predicted_backlog(dataclasses.asdict(recipe))
    left = 0.0
    if backlog is not None and backlog.points[-1][0] > duration:
        left = backlog.points[-1][0] - duration
    return math.ceil(max(30.0, 2 * left + 10))


def write_recipe(w: Workload, path: Path, **options: float | int | None) -> Path:
    """Write the recipe and check that the lab loads it back as written."""
    save(recipe_data(w, path.stem or "capacity", **options), path)
    return path
