"""Numbers as the dashboard prints them (the same helpers `lab run` uses)."""

from rich.text import Text

from lab.app.format import STATE_STYLE
from lab.phases import Phase

PHASE_STYLE = {
    Phase.RUNNING: "green",
    Phase.WARMUP: "green",
    Phase.FAILED: "bold red",
    Phase.DONE: "bold",
}
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


def network_text(network: dict[str, dict[str, float]]) -> Text:
    """The network faults in force, as short as they can be said."""
    parts = []
    for action, args in network.items():
        if action == "latency":
            jitter = f"±{args.get('jitter', 0):g}" if args.get("jitter") else ""
            parts.append(f"+{args.get('ms', 0):g}{jitter}ms")
        elif action == "bandwidth":
            parts.append(f"{args.get('kbps', 0):g}kB/s")
        elif action == "blackhole":
            parts.append("PARTITIONED")
        else:
            parts.append(action)
    return Text(" ".join(parts), style="bold magenta")
