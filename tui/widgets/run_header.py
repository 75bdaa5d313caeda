"""The line above the columns: recipe, run, mode, phase, the run clock and the profile."""

from rich.text import Text

from lab.metrics import Snapshot
from tui.format import phase_text
from tui.model import profile_position
from tui.widgets.broker_column import Readout

BAR = 16


class RunHeader(Readout):
    WRAPS = True
    DEFAULT_CSS = """
    RunHeader {
        height: auto;
        max-height: 2;
        padding: 0 1;
        background: $primary-background;
    }
    """

    def show_run(
        self, snap: Snapshot, rate: dict, replay: bool, frozen: bool, hint: str = ""
    ) -> None:
        done = min(snap.t / snap.duration, 1.0) if snap.duration else 0.0
        clock = f" of {snap.duration:g} s "
        if snap.t > snap.duration:
            clock = f" s: {snap.duration:g} s + drain "
        filled = round(done * BAR)
        target = max((b.target_rate for b in snap.brokers), default=0.0)
        where = profile_position(rate, snap.t, snap.duration)
        text = Text.assemble(
            (snap.recipe, "bold"),
            "  ",
            phase_text(snap.phase),
            "  ",
            (f"{snap.t:6.1f}", "bold"),
            clock,
            ("━" * filled, "green"),
            ("━" * (BAR - filled), "dim"),
            "  ",
            ("whole-run figures", "bold") if snap.done else where,
            (f", now {target:,.0f}/s" if target else "", ""),
            ("  ", ""),
            (snap.mode, "dim"),
            (f"  {snap.run_id}", "dim"),
        )
        if replay:
            text.append("  REPLAY", style="bold cyan")
        if hint:
            text.append(f"  {hint}", style="bold")
        if frozen:
            text.append("  FROZEN (space)", style="bold black on yellow")
        self.show(text)
