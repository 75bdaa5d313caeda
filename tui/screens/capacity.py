"""The capacity screen: the flags of `lab capacity` as fields, the figures and the day's
backlog curve updating as you type, and a key that runs the generated recipe.

The model is lab.capacity's, the same as the command's; this screen only reads fields and
shows the result. Running is the app's business: `run_recipe` (given to the constructor)
gets the recipe, written to `recipe_path` and loaded back as `lab run` would read it, and
starts it on the brokers ticked on the Start screen.
"""

import argparse
from collections.abc import Callable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Sparkline, Static

from lab.capacity import Plan, flags, fluid, plan
from lab.capacity.recipe import write_recipe
from lab.capacity.table import duration, render
from lab.errors import LabError
from lab.recipes import Recipe, load
from tui.bindings import CAPACITY
from tui.widgets.footer import FittingFooter

RunRecipe = Callable[[Recipe], None]

# (field id = the command's flag without "--", label, default). Empty means "not given".
FIELDS = [
    ("users", "users", "1000"),
    ("requests-per-user", "requests per user", "10"),
    ("hours", "hours", "8-18"),
    ("peak-share", "share in first hour", ""),
    ("request-size", "request size", "1MB"),
    ("response-size", "response size", "10KB"),
    ("server-rps", "server req/s", "10"),
    ("servers", "servers (proxy)", ""),
    ("workers", "workers (queue)", "1"),
    ("cost-per-request", "cost per request", ""),
    ("cost-per-server-hour", "cost per server-hour", ""),
    ("seconds-per-hour", "recipe: s per hour", "10"),
    ("rate-scale", "recipe: rate x", ""),
    ("message-size", "recipe: message size", "256B"),
]
CURVE_POINTS = 120  # over the working day: five minutes each for 8:00 to 18:00


def namespace(values: dict[str, str]) -> argparse.Namespace:
    """The fields as `lab capacity`'s parsed arguments, so both check values the same way.
    An empty field is a flag not given: the command's default (shown as the placeholder)."""
    args = {}
    for fid, _, default in FIELDS:
        args[fid.replace("-", "_")] = values.get(fid, "").strip() or default or None
    return argparse.Namespace(**args)


def curve_span_s(p: Plan) -> float:
    """The working day, or longer when the backlog outlasts it."""
    day = p.workload.working_hours * 3600.0
    drained = p.backlog.drained_at if p.backlog else None
    return max(day, drained or 0.0)


def backlog_curve(p: Plan, points: int = CURVE_POINTS) -> list[float]:
    """Requests waiting from the start of work, over curve_span_s."""
    if p.backlog is None:
        return []
    step = curve_span_s(p) / points
    return [fluid.at(p.backlog.points, i * step) for i in range(points)]


class CapacityScreen(Screen[None]):
    BINDINGS = CAPACITY
    DEFAULT_CSS = """
    CapacityScreen #title { height: 1; padding: 0 1; background: $primary-background; }
    CapacityScreen #form { width: 44; border: round $panel-lighten-2; }
    CapacityScreen .field { height: 3; }
    CapacityScreen .field Label { width: 22; padding: 1 1 0 0; text-align: right; }
    CapacityScreen .field Input { width: 1fr; }
    CapacityScreen .field Input.-invalid { border: tall $error; }
    CapacityScreen #results { width: 1fr; }
    CapacityScreen #figures { border: round $panel-lighten-2; padding: 0 1; height: auto; }
    CapacityScreen #curve-label { padding: 0 1; }
    CapacityScreen #curve { height: 5; margin: 0 1; }
    CapacityScreen #problem { color: $error; padding: 0 1; height: auto; }
    CapacityScreen #status { padding: 0 1; height: auto; color: $text-muted; }
    CapacityScreen #run { margin: 1 1 0 1; }
    """

    def __init__(
        self,
        run_recipe: RunRecipe | None = None,
        recipe_path: Path = Path("results") / "capacity.toml",
        values: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.run_recipe_hook = run_recipe
        self.recipe_path = recipe_path
        self.initial = values or {}
        self.plan: Plan | None = None
        self.problem = ""

    def compose(self) -> ComposeResult:
        yield Static("Capacity: users, working hours, a morning peak", id="title")
        with Horizontal():
            with VerticalScroll(id="form"):
                for fid, label, default in FIELDS:
                    with Horizontal(classes="field"):
                        yield Label(label)
                        yield Input(
                            self.initial.get(fid, default), id=fid, placeholder=default or "-"
                        )
            with Vertical(id="results"):
                yield Static(id="problem")
                yield Static(id="figures")
                yield Label("", id="curve-label")
                yield Sparkline([], id="curve")
                yield Button("Run recipe on the ticked brokers (ctrl+r)", id="run")
                yield Static(id="status")
        yield FittingFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.recompute()

    def values(self) -> dict[str, str]:
        return {fid: self.query_one(f"#{fid}", Input).value for fid, _, _ in FIELDS}

    @on(Input.Changed)
    def recompute(self) -> None:
        """Every keystroke: the model is a few hundred arithmetic steps, cheaper than a frame."""
        for field in self.query(Input):
            field.remove_class("-invalid")
        try:
            args = namespace(self.values())
            p = plan(flags.workload(args))
            flags.recipe_options(args)
        except LabError as exc:
            self.problem = str(exc)
            self.query_one("#problem", Static).update(self.problem)
            bad = str(exc).split(":", 1)[0].removeprefix("--")
            if bad in {fid for fid, _, _ in FIELDS}:
                self.query_one(f"#{bad}", Input).add_class("-invalid")
            return
        self.problem, self.plan = "", p
        self.query_one("#problem", Static).update("")
        self.query_one("#figures", Static).update(render(p))
        curve = backlog_curve(p)
        # A new list each time: Sparkline does not see a list changed in place.
        self.query_one("#curve", Sparkline).data = list(curve)
        self.query_one("#curve-label", Label).update(self._curve_text(p))

    @staticmethod
    def _curve_text(p: Plan) -> str:
        q = p.queue
        if q["backlog_max"] is None:
            return "queue backlog: grows every day (the workers are slower than the day's mean)"
        if not q["backlog_max"]:
            return "queue backlog: none (the workers keep up all day)"
        start = p.workload.hours[0]
        end = start + curve_span_s(p) / 3600
        return (
            f"queue backlog from {start}:00 to {int(end)}:{round(end % 1 * 60):02d}: up to "
            f"{q['backlog_max']:,.0f}, gone {duration(q['drained_after_s'])} after the peak"
        )

    @on(Button.Pressed, "#run")
    def action_run_recipe(self) -> None:
        status = self.query_one("#status", Static)
        if self.problem:
            status.update(f"fix the fields first: {self.problem}")
            return
        try:
            args = namespace(self.values())
            path = write_recipe(
                flags.workload(args), self.recipe_path, **flags.recipe_options(args)
            )
            recipe = load(str(path))
        except LabError as exc:
            status.update(str(exc))
            return
        if self.run_recipe_hook is None:
            status.update(f"recipe written: {path} (run it: lab run {path})")
            return
        status.update(f"recipe written: {path}; starting it")
        self.run_recipe_hook(recipe)
