"""The Start screen: brokers with their live state to tick, a recipe, the run mode, Start.

Broker states come from the runtime in a worker thread, re-armed two seconds after each
answer (so a slow status call never piles up). Brokers that are not running are brought up
from here, off the UI thread, with their progress in the log at the bottom.
"""

from collections.abc import Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    OptionList,
    RadioButton,
    RadioSet,
    RichLog,
    Static,
)
from textual.widgets.option_list import Option

from lab import brokers as registry
from lab import recipes
from lab.errors import LabError
from lab.faults import planned_problem
from lab.recipes import Recipe
from lab.runtimes import BrokerState, BrokerStatus
from tui.bindings import START
from tui.format import state_text
from tui.widgets.footer import FittingFooter

POLL_EVERY = 2.0
TICK = (Text("[ ]", style="dim"), Text("[x]", style="bold green"))


def with_duration(recipe: Recipe, duration: str) -> Recipe:
    """The recipe with another duration, checked like the recipe file itself."""
    if not duration.strip():
        return recipe
    data = recipe.to_dict()
    data["duration"] = duration.strip()
    return recipes.parse(data, f"recipe {recipe.name}")


def describe(recipe: Recipe) -> Text:
    """A recipe's description and main parameters."""
    rate = recipe.rate
    profile = f"{rate.profile} {rate.rate:,.0f} msgs/s"
    if rate.profile == "ramp":
        profile = f"ramp {rate.rate:,.0f} → {rate.to:,.0f} msgs/s"
    elif rate.profile == "spike":
        profile += f", peak {rate.peak:,.0f}/s at {rate.start:g}s for {rate.length:g}s"
    elif rate.profile == "curve":
        profile = f"curve of {len(rate.curve)} slices, mean {rate.rate:,.0f} msgs/s"
    consumers = recipe.consumers
    work_ = f", {consumers.processing_time * 1000:g} ms each" if consumers.processing_time else ""
    size = recipe.message
    size_text = f"{size.size} B" if size.distribution == "fixed" else f"{size.min}-{size.max} B"
    lines = [
        (recipe.description or "(no description)") + "\n",
        f"{recipe.duration:g} s (warm-up {recipe.warmup:g} s) · {profile}",
        f"{size_text} messages · durability {recipe.durability}",
        f"{recipe.producers.count} producer(s) · {consumers.count} consumer(s){work_}",
    ]
    if recipe.poison_share:
        lines.append(f"poison {recipe.poison_share:.1%} · dead-letter after {recipe.max_attempts}")
    if recipe.faults:
        lines.append(f"{len(recipe.faults)} scheduled fault(s)")
    return Text("\n".join(lines))


def fit(pattern: str, brokers: list[str]) -> Text:
    """Which of the ticked brokers run the recipe's pattern, and why the others do not."""
    if not brokers:
        return Text("")
    cannot = {b: registry.get(b).cannot(pattern) for b in brokers}
    able = [b for b, why in cannot.items() if why is None]
    lines = [Text(f"✓ {pattern} on {', '.join(able)}", style="green")] if able else []
    lines += [Text(f"✗ {why}", style="bold red") for why in cannot.values() if why]
    return Text("\n").join(lines)


class StartScreen(Screen[None]):
    BINDINGS = START
    DEFAULT_CSS = """
    StartScreen #title { height: 1; padding: 0 1; background: $primary-background; }
    StartScreen #brokers {
        height: auto;
        max-height: 11;  /* every broker (7) at 50 rows; scrolls on a small terminal */
        border: round $panel-lighten-2;
        scrollbar-size-horizontal: 0;
    }
    StartScreen #middle { height: 1fr; min-height: 6; }
    StartScreen #recipes { width: 30; border: round $panel-lighten-2; }
    StartScreen #recipe-detail { width: 1fr; border: round $panel-lighten-2; padding: 0 1; }
    StartScreen #fit { margin-bottom: 1; }
    StartScreen #controls { height: 1; margin: 0 1; }
    StartScreen #controls Label { margin: 0 1 0 2; }
    StartScreen #mode { width: auto; height: 1; layout: horizontal; }
    StartScreen #mode RadioButton { width: auto; margin-right: 1; }
    StartScreen #duration { width: 10; }
    StartScreen #start-button { margin-left: 2; }
    StartScreen #progress {
        height: 4;
        border-top: solid $panel-lighten-2;
        scrollbar-size-vertical: 1;
        color: $text-muted;
    }
    """

    def __init__(self, recipe_list: Sequence[Recipe]) -> None:
        super().__init__()
        self.recipe_list = list(recipe_list)
        self.statuses: dict[str, BrokerStatus] = {}
        self.ticked: set[str] = set()
        self.touched = False  # the user ticked something: keep their choice
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Static("Broker Lab: tick brokers (space), pick a recipe, then s to start", id="title")
        table: DataTable = DataTable(id="brokers", cursor_type="row")
        table.border_title = "Brokers"
        for name, key in (("", "tick"), ("broker", "broker"), ("state", "state")):
            table.add_column(name, key=key)
        for name in ("version", "detail", "endpoint"):
            table.add_column(name, key=name)
        for broker in registry.names():
            table.add_row(TICK[0], broker, state_text("…"), "", "", "", key=broker)
        yield table
        with Horizontal(id="middle"):
            options = [Option(r.name, id=r.name) for r in self.recipe_list]
            recipe_box = OptionList(*options, id="recipes")
            recipe_box.border_title = "Recipes"
            yield recipe_box
            with VerticalScroll(id="recipe-detail", can_focus=False) as detail:
                detail.border_title = "Recipe"
                yield Static(id="fit")
                yield Static(id="recipe-text")
        with Horizontal(id="controls"):
            with RadioSet(id="mode", compact=True):
                yield RadioButton("parallel", value=True, id="parallel", compact=True)
                yield RadioButton("sequential", id="sequential", compact=True)
            yield Label("duration")
            yield Input(placeholder="recipe's", id="duration", compact=True)
            yield Button("Start", id="start-button", variant="primary", compact=True)
        log = RichLog(id="progress", markup=False, wrap=True, max_lines=200)
        log.can_focus = False
        yield log
        yield FittingFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        names = [r.name for r in self.recipe_list]
        recipe_box = self.query_one("#recipes", OptionList)
        if names:
            recipe_box.highlighted = names.index("quickstart") if "quickstart" in names else 0
        self.query_one("#duration", Input).cursor_blink = self.app.cursor_blink
        self.query_one("#brokers", DataTable).focus()
        self.say("Ticked brokers that are not running are started when you start (or press u).")
        self._poll()

    # --- broker states --------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="status")
    def _poll(self) -> None:
        try:
            statuses = self.app.broker_status(list(registry.names()))
        except Exception as exc:  # show it, keep polling: the runtime may come back
            self.app.call_from_thread(self.say, f"status: {exc}")
            statuses = []
        self.app.call_from_thread(self.show_statuses, statuses)

    def show_statuses(self, statuses: list[BrokerStatus]) -> None:
        table = self.query_one("#brokers", DataTable)
        for s in statuses:
            old = self.statuses.get(s.broker)
            self.statuses[s.broker] = s
            if old == s:
                continue
            cells = {
                "state": state_text(str(s.state)),
                "version": s.version or "-",
                "endpoint": s.endpoint or "-",
                "detail": s.detail,
            }
            for column, value in cells.items():
                table.update_cell(s.broker, column, value, update_width=True)
        if statuses and not self.touched and not self.ticked:
            self.set_ticks(self._default_ticks())
        if self.app.poll_status:
            self.set_timer(POLL_EVERY, self._poll_if_current)

    def _poll_if_current(self) -> None:
        if self.is_current and not self.busy:
            self._poll()
        elif self.is_attached:
            self.set_timer(POLL_EVERY, self._poll_if_current)

    def _default_ticks(self) -> set[str]:
        recipe = self.recipe
        wanted = set(recipe.brokers) if recipe else set(registry.default_names())
        healthy = {b for b, s in self.statuses.items() if s.state is BrokerState.HEALTHY}
        return (wanted & healthy) or wanted

    def set_ticks(self, brokers: set[str]) -> None:
        table = self.query_one("#brokers", DataTable)
        self.ticked = set(brokers)
        for broker in registry.names():
            table.update_cell(broker, "tick", TICK[broker in self.ticked])
        self._show_fit()

    def toggle(self, broker: str) -> None:
        self.touched = True
        self.set_ticks(self.ticked ^ {broker})

    @on(DataTable.RowSelected, "#brokers")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.toggle(str(event.row_key.value))

    def action_toggle_broker(self) -> None:
        table = self.query_one("#brokers", DataTable)
        self.toggle(registry.names()[table.cursor_row])

    # --- recipe, mode, duration ---------------------------------------------------------------

    @property
    def recipe(self) -> Recipe | None:
        index = self.query_one("#recipes", OptionList).highlighted
        return self.recipe_list[index] if index is not None and self.recipe_list else None

    @on(OptionList.OptionHighlighted, "#recipes")
    def _recipe_highlighted(self) -> None:
        recipe = self.recipe
        if recipe is None:
            return
        self.query_one("#recipe-detail").border_title = recipe.name
        self.query_one("#recipe-text", Static).update(describe(recipe))
        self.query_one("#duration", Input).placeholder = f"{recipe.duration:g}s"
        self._show_fit()

    def _show_fit(self) -> None:
        recipe = self.recipe
        if recipe is not None and self.is_mounted:
            ticked = [b for b in registry.names() if b in self.ticked]
            self.query_one("#fit", Static).update(fit(recipe.pattern, ticked))

    def action_edit_recipe(self) -> None:
        recipe = self.recipe
        if recipe is None:
            self.notify("There is no recipe to edit.", severity="error")
            return
        from tui.screens.edit_recipe import EditRecipeScreen

        self.app.push_screen(EditRecipeScreen(recipe, self.app.results_dir), self._add_recipe)

    def _add_recipe(self, recipe: Recipe | None) -> None:
        """An edited recipe joins the list (in place of an earlier one of its name)."""
        if recipe is None:
            return
        names = [r.name for r in self.recipe_list]
        if recipe.name in names:
            index = names.index(recipe.name)
            self.recipe_list[index] = recipe
        else:
            index = (self.query_one("#recipes", OptionList).highlighted or 0) + 1
            self.recipe_list.insert(index, recipe)
        box = self.query_one("#recipes", OptionList)
        box.clear_options()
        box.add_options([Option(r.name, id=r.name) for r in self.recipe_list])
        box.highlighted = index
        self._recipe_highlighted()

    @property
    def mode(self) -> str:
        pressed = self.query_one("#mode", RadioSet).pressed_button
        return str(pressed.id) if pressed is not None else "parallel"

    def say(self, message: str) -> None:
        self.query_one("#progress", RichLog).write(message)

    # --- up and start -------------------------------------------------------------------------

    @on(Button.Pressed, "#start-button")
    def action_start(self) -> None:
        self._launch(start=True)

    def action_bring_up(self) -> None:
        self._launch(start=False)

    def action_refresh(self) -> None:
        self._poll()

    def action_capacity(self) -> None:
        from tui.screens.capacity import CapacityScreen

        def run(recipe: Recipe) -> None:
            self.app.pop_screen()
            self._launch(start=True, recipe=recipe)

        path = self.app.results_dir / "capacity.toml"
        self.app.push_screen(CapacityScreen(run_recipe=run, recipe_path=path))

    def _launch(self, start: bool, recipe: Recipe | None = None) -> None:
        """Bring the ticked brokers up, then (`start`) run the recipe: the one given, or
        the highlighted one with the duration field's override."""
        if self.busy:
            self.notify("Busy bringing brokers up…", severity="warning")
            return
        brokers = [b for b in registry.names() if b in self.ticked]
        if not brokers:
            self.notify("Tick at least one broker (space).", severity="error")
            return
        if start and recipe is None:
            recipe = self.recipe
            if recipe is None:
                self.notify("There is no recipe to run.", severity="error")
                return
            try:
                recipe = with_duration(recipe, self.query_one("#duration", Input).value)
            except LabError as exc:
                self.notify(str(exc), severity="error", timeout=8)
                return
        if start and recipe is not None:
            unfit = [c for c in (registry.get(b).cannot(recipe.pattern) for b in brokers) if c]
            # Said before anything starts, not as a failure (or a fault quietly skipped)
            # mid-run.
            planned = planned_problem(recipe.faults, brokers)
            problem = unfit[0] if unfit else planned and f"{recipe.name}: {planned}"
            if problem:
                self.notify(problem, severity="error", timeout=8)
                return
        self.busy = True
        self._up_then_start(brokers, recipe if start else None, self.mode)

    @work(thread=True, exclusive=True, group="up")
    def _up_then_start(self, brokers: list[str], recipe: Recipe | None, mode: str) -> None:
        app = self.app
        try:
            app.bring_up(brokers, lambda b, m: app.call_from_thread(self.say, f"{b}: {m}"))
        except Exception as exc:
            app.call_from_thread(self._failed, f"could not bring brokers up: {exc}")
            return
        app.call_from_thread(self._poll)
        if recipe is not None:
            app.call_from_thread(self._start_run, recipe, brokers, mode)
        else:
            app.call_from_thread(setattr, self, "busy", False)

    def _failed(self, message: str) -> None:
        self.busy = False
        self.say(message)
        self.notify(message, severity="error", timeout=10)

    def _start_run(self, recipe: Recipe, brokers: list[str], mode: str) -> None:
        self.busy = False
        try:
            self.app.start_run(recipe, brokers, mode)
        except LabError as exc:
            self._failed(str(exc))
