"""The one error type users see: a sentence that says what is wrong and what to do."""

from collections.abc import Iterable
from difflib import get_close_matches


class LabError(Exception):
    """Bad input or a broken environment. The CLI prints it as one line and exits 2."""


def unknown_choice(kind: str, value: str, allowed: Iterable[str]) -> LabError:
    allowed = list(allowed)
    close = get_close_matches(value, allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return LabError(f"unknown {kind} '{value}'{hint}: choose from {', '.join(allowed)}")
