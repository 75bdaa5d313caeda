"""The capacity flags' values: sizes (decimal, as the lecture counts), working hours, numbers.

Every parser raises LabError naming the flag, the value and what to write instead, so a
typo is one line, never a traceback.
"""

import math
import re

from lab.errors import LabError

# Decimal units, like the recipes: 1 MB is 10**6 bytes, so 1 MB at 10 bits a byte is 10 Mbit.
SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 10**6,
    "mib": 2**20,
    "gb": 10**9,
    "gib": 2**30,
}


def size(flag: str, text: str) -> int:
    """'1MB', '10KB', '512' (bytes) -> bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]i?[bB]|[bB])?\s*", str(text))
    if not match:
        raise LabError(f"{flag}: '{text}' is not a size; write e.g. 1MB, 10KB, 512B")
    value = float(match.group(1)) * SIZE_UNITS[(match.group(2) or "b").lower()]
    if value <= 0:
        raise LabError(f"{flag}: '{text}' must be larger than 0")
    return round(value)


def hours(flag: str, text: str) -> tuple[int, int]:
    """'8-18' -> (8, 18): the working day, whole hours of a 24 hour clock."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*", str(text))
    if not match:
        raise LabError(f"{flag}: '{text}' is not a span of hours; write e.g. 8-18")
    start, end = int(match.group(1)), int(match.group(2))
    if not 0 <= start < end <= 24:
        raise LabError(f"{flag}: '{text}' must run forward within one day (0 <= start < end <= 24)")
    return start, end


def number(flag: str, text: str, low: float = 0.0, *, above: bool = True) -> float:
    """A finite number larger than `low` (or at least `low` when above=False)."""
    try:
        value = float(str(text).replace("_", "").replace(",", ""))
    except ValueError:
        raise LabError(f"{flag}: '{text}' is not a number") from None
    if not math.isfinite(value) or (value <= low if above else value < low):
        bound = f"larger than {low:g}" if above else f"at least {low:g}"
        raise LabError(f"{flag}: '{text}' must be a number {bound}")
    return value


def whole(flag: str, text: str, low: int = 1) -> int:
    """A whole number of at least `low`."""
    try:
        value = int(str(text).replace("_", "").replace(",", ""))
    except ValueError:
        raise LabError(f"{flag}: '{text}' is not a whole number") from None
    if value < low:
        raise LabError(f"{flag}: '{text}' must be at least {low}")
    return value


def share(flag: str, text: str) -> float:
    """'0.55' or '55%' -> 0.55, strictly between 0 and 1 (or exactly 1)."""
    raw = str(text).strip()
    percent = raw.endswith("%")
    value = number(flag, raw.rstrip("%"), 0.0)
    if percent:
        value /= 100
    if value > 1:
        raise LabError(f"{flag}: '{text}' is more than the whole day; write e.g. 0.55 or 55%")
    return value
