"""Figures as people read them, the same in `lab run`'s table and in the TUI."""


def number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if abs(value) >= 10_000:
        return f"{value / 1000:,.1f}k"
    return f"{value:,.{digits}f}"


def millis(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def mebibytes(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


STATE_STYLE = {"healthy": "green", "killed": "bold red", "paused": "yellow", "unreachable": "red"}
