"""The one error type users see: a sentence that says what is wrong and what to do."""

from collections.abc import Iterable
from difflib import get_close_matches


class LabError(Exception):
    """Bad input or a broken environment. The CLI prints it as one line and exits 2: a
    line break in what it quotes (a field name, a value from a file) is written as \\n."""

    def __init__(self, message: object = "", *args: object) -> None:
        text = str(message).replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(text, *args)


def unknown_choice(kind: str, value: str, allowed: Iterable[str]) -> LabError:
    allowed = list(allowed)
    close = get_close_matches(str(value), allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return LabError(f"unknown {kind} {value!r}{hint}: choose from {', '.join(allowed)}")
