"""Numbers as the dashboard prints them (the same helpers `lab run` uses)."""

from rich.text import Text

from lab.live import STATE_STYLE

PHASE_STYLE = {"running": "green", "warmup": "green", "failed": "bold red", "done": "bold"}
KIND_STYLE = {
    "fault": "bold magenta",
    "command": "cyan",
    "state": "yellow",
    "error": "bold red",
    "phase": "blue",
    "lab": "green",
}


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, "yellow" if state != "unknown" else "dim"))


def phase_text(phase: str) -> Text:
    return Text(phase, style=PHASE_STYLE.get(phase, "dim"))
