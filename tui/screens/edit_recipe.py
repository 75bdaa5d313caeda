"""The recipe editor: the chosen recipe's main knobs as fields, checked as you type, to run
as they are or to save as a new recipe file ("the same, but with three subscribers" needs
no text editor).

The fields are recipe fields by their dotted names, read the way `lab run --set` reads
them, so a value means the same here as on the command line and in a file.
"""

import re
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from lab.errors import LabError
from lab.recipes import Recipe
from lab.recipes.model import DURABILITY, PATTERNS
from lab.recipes.parse import recipe_setting, with_overrides
from lab.recipes.write import changed_fields, save
from tui.bindings import EDIT_RECIPE

CHOICES = {"pattern": PATTERNS, "durability": DURABILITY}
# (dotted recipe field, label). The pattern's own sections follow the pattern.
FIELDS = [
    ("name", "name"),
    ("pattern", "pattern"),
    ("rate.rate", "rate (msgs/s)"),
    ("message.size", "message size"),
    ("producers.count", "producers"),
    ("consumers.count", "consumers"),
    ("subscribers.count", "subscribers"),
    ("durability", "durability"),
    ("duration", "duration"),
]
PATTERN_SECTIONS = {"pub-sub": "subscribers", "request-reply": "requests"}
EDITED = "Changed on the Start screen"
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def knobs(recipe: Recipe) -> dict[str, str]:
    """The fields' first values: the recipe's own, and a new name for a new file."""
    size = recipe.message
    return {
        "name": recipe.name if recipe.name.endswith("-edited") else f"{recipe.name}-edited",
        "pattern": recipe.pattern,
        "rate.rate": f"{recipe.rate.rate:g}",
        "message.size": f"{size.size if size.distribution == 'fixed' else size.max}B",
        "producers.count": str(recipe.producers.count),
        "consumers.count": str(recipe.consumers.count),
        "subscribers.count": str(recipe.subscribers.count),
        "durability": recipe.durability,
        "duration": f"{recipe.duration:g}s",
    }


def edited(recipe: Recipe, values: dict[str, str]) -> Recipe:
    """The recipe with the fields' values, checked like a file; a mistake is one line that
    names the field. A section of another pattern is dropped (a fan-out's subscribers do
    not make sense in a work queue), and a size makes the messages that size."""
    name = values.get("name", "").strip()
    if not FILE_NAME.match(name):
        raise LabError("name: letters, digits, '.', '-' and '_' only (it names the file)")
    data = recipe.to_dict()
    pattern = values.get("pattern", recipe.pattern)
    dropped = {section for other, section in PATTERN_SECTIONS.items() if other != pattern}
    for section in dropped:
        data.pop(section, None)
    if values.get("message.size", "").strip():
        data["message"] = {"distribution": "fixed"}
    if not recipe.description.startswith(EDITED):
        data["description"] = f"{EDITED} from {recipe.name}. {recipe.description}".strip()
    overrides = {}
    for dotted, label in FIELDS:
        text = values.get(dotted, "").strip()
        if text and dotted.split(".")[0] not in dropped:
            overrides[dotted] = (label, recipe_setting(f"{dotted}={text}")[1])
    return with_overrides(data, overrides, f"recipe {name}")


class EditRecipeScreen(ModalScreen[Recipe | None]):
    """Dismissed with the edited recipe (run it, or saved and run), or None."""

    BINDINGS = EDIT_RECIPE
    DEFAULT_CSS = """
    EditRecipeScreen { align: center middle; }
    EditRecipeScreen #dialog {
        width: 64; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    EditRecipeScreen .field { height: 1; }
    EditRecipeScreen .field Label { width: 16; text-align: right; margin-right: 1; }
    EditRecipeScreen .field Input, EditRecipeScreen .field Select { width: 1fr; }
    EditRecipeScreen #problem { color: $error; height: auto; margin-top: 1; }
    EditRecipeScreen #hint { color: $text-muted; height: auto; }
    EditRecipeScreen #buttons { height: 1; margin-top: 1; }
    EditRecipeScreen #buttons Button { margin-right: 2; }
    """

    def __init__(self, recipe: Recipe, save_dir: Path) -> None:
        super().__init__()
        self.recipe = recipe
        self.save_dir = save_dir
        self.result: Recipe | None = recipe

    def compose(self) -> ComposeResult:
        values = knobs(self.recipe)
        with Vertical(id="dialog") as dialog:
            dialog.border_title = f"Edit {self.recipe.name}"
            for dotted, label in FIELDS:
                fid = dotted.replace(".", "-")
                with Horizontal(classes="field"):
                    yield Label(label)
                    if dotted in CHOICES:
                        options = [(c, c) for c in CHOICES[dotted]]
                        yield Select(
                            options, value=values[dotted], id=fid, allow_blank=False, compact=True
                        )
                    else:
                        yield Input(values[dotted], id=fid, compact=True)
            yield Static(id="problem")
            with Horizontal(id="buttons"):
                yield Button("Use", id="use", variant="primary", compact=True)
                yield Button("Save as a file", id="save", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
            yield Static(
                f"enter: use for the next run · ctrl+s: save to {self.save_dir}/NAME.toml"
                " and use · esc: cancel",
                id="hint",
            )

    def on_mount(self) -> None:
        self.query_one("#rate-rate", Input).focus()
        self._check()

    def values(self) -> dict[str, str]:
        out = {}
        for dotted, _ in FIELDS:
            widget = self.query_one(f"#{dotted.replace('.', '-')}")
            value = widget.value if isinstance(widget, Input | Select) else ""
            out[dotted] = str(value)
        return out

    @on(Input.Changed)
    @on(Select.Changed)
    def _check(self) -> None:
        pattern = str(self.query_one("#pattern", Select).value)
        # Only pub-sub has subscribers: the field is read for it alone.
        self.query_one("#subscribers-count", Input).disabled = pattern != "pub-sub"
        try:
            self.result = edited(self.recipe, self.values())
            problem = ""
        except LabError as exc:
            self.result, problem = None, str(exc)
        self.query_one("#problem", Static).update(problem)
        for button in ("#use", "#save"):
            self.query_one(button, Button).disabled = self.result is None

    @on(Input.Submitted)
    @on(Button.Pressed, "#use")
    def action_use(self) -> None:
        if self.result is not None:
            self.dismiss(self.result)

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        if self.result is None:
            return
        path = self.save_dir / f"{self.result.name}.toml"
        try:
            saved = save(changed_fields(self.result), path)
        except LabError as exc:
            self.query_one("#problem", Static).update(str(exc))
            return
        self.app.notify(f"saved {path}: `lab run {path}` runs it too", timeout=8)
        self.dismiss(saved)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
