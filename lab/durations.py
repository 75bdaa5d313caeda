"""Durations as users write them, read one way everywhere: a recipe's fields, --duration,
fault times (`--fault '1h kill redis'`, a recipe's `at`) and fault arguments such as `for`.

A bare number is seconds, as for sleep and timeout; units: ms, s, m, min, h.
"""

import re

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
EXAMPLES = "30, 30s, 500ms, 2m, 1h"

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|min|h)?\s*")


def seconds(raw: object) -> float | None:
    """`raw` (a number, or text such as '30', '.5', '500ms', '1h') in seconds, or None
    when it is not a duration. Numbers pass as they are: range checks are the caller's."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if not isinstance(raw, str):
        return None
    match = _DURATION.fullmatch(raw)
    if not match:
        return None
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def not_a_duration(raw: object) -> str:
    """What to say about a value that is not a duration, in the same words everywhere."""
    return f"{raw!r} is not a duration; write e.g. {EXAMPLES}"
