"""The [stream] section's rules that span fields: (field, problem) for the recipe parser,
which names the file (lab/recipes/parse.py)."""

from lab import brokers as registry
from lab.recipes.model import Stream
from lab.stream.events import never_negative
from lab.stream.view import STORES


def problem(cfg: Stream) -> tuple[str, str] | None:
    """What is wrong with the section, or None."""
    w, t = cfg.windows, cfg.triggers
    if not cfg.view_store:
        if cfg.dedupe or w.kind or t.action:
            return "stream.view_store", (
                f"the stream stage needs a store for its features: one of {', '.join(STORES)}"
            )
        return None
    if cfg.view_store not in STORES:
        return "stream.view_store", f"{cfg.view_store!r} is not a view store; allowed: " + (
            ", ".join(STORES)
        )
    if cfg.view_store not in registry.names():
        return "stream.view_store", f"{cfg.view_store} is not installed in this lab"
    if not cfg.view and not w.kind:
        return "stream.view", "with view = false the stage needs windows ([stream.windows] kind)"
    if w.kind == "hopping":
        if w.hop <= 0:
            return "stream.windows.hop", "hopping windows need hop > 0 (e.g. 10s)"
        if w.hop > w.size:
            return "stream.windows.hop", f"{w.hop:g}s is longer than the window ({w.size:g}s)"
        if round(w.size * 1000) // max(1, round(w.hop * 1000)) > 100:
            return "stream.windows.hop", "more than 100 windows per event: make hop larger"
    if t.action:
        if not w.kind:
            return "stream.triggers.action", "triggers fire on window statistics: set windows"
        if t.action == "command" and not t.command.strip():
            return "stream.triggers.command", 'action = "command" needs the command to run'
        if t.statistic == "sum" and not never_negative(cfg):
            return "stream.triggers.statistic", (
                f"a sum of {cfg.values} values can fall again, so crossing its threshold is "
                'not one event: use statistic = "count", or values = "amount"'
            )
    return None
