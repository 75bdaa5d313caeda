"""`?`: the keys of the screen you came from, generated from its active bindings.

Nothing here is hand-written: a key remapped in the config file shows as remapped, a
binding added to a screen shows up by itself.
"""

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from tui.bindings import APP, HELP, SELECT_GROUP
from tui.widgets.footer import FittingFooter


def binding_rows(screen: Screen, display: object) -> list[tuple[str, str, str, str]]:
    """(keys, binding id, description, explanation) for every active binding of `screen`
    that the lab defines (they all have ids), one row per binding however many keys, in
    the order the screen lists them. The nine column keys (1-9) share a row."""
    rows: dict[str, list] = {}
    for key, active in screen.active_bindings.items():
        b: Binding = active.binding
        if not b.id:
            continue  # Textual's own (tab, copy): not ours to explain
        shown = display(b) or key
        grouped = b.group is SELECT_GROUP
        row = b.group.description if grouped else b.id
        if row in rows:
            rows[row][0].append(shown)
            if grouped:
                rows[row][1].append(b.id)
        else:
            description = b.group.description if grouped else b.description
            rows[row] = [[shown], [b.id], description, b.tooltip, b.id]
    order = [b.id for b in [*type(screen).BINDINGS, *APP] if isinstance(b, Binding)]
    ranked = sorted(rows.values(), key=lambda r: order.index(r[4]) if r[4] in order else 999)
    return [
        (
            f"{keys[0]}-{keys[-1]}" if len(ids) > 2 else " / ".join(keys),
            f"{ids[0]} … {ids[-1]}" if len(ids) > 1 else ids[0],
            desc,
            tip,
        )
        for keys, ids, desc, tip, _ in ranked
    ]


class HelpScreen(ModalScreen[None]):
    BINDINGS = HELP
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $accent;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
    }
    """

    def __init__(self, title: str, rows: list[tuple[str, str, str, str]], config: str) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows
        self.config = config

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, header_style="bold", pad_edge=False)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("action", no_wrap=True)
        table.add_column("what it does", ratio=1)
        table.add_column("id (keymap)", style="dim", no_wrap=True)
        for keys, binding_id, description, tooltip in self.rows:
            table.add_row(keys, description, tooltip, binding_id)
        with VerticalScroll() as box:
            box.border_title = f"Keys: {self.title_text}"
            yield Static(table)
            yield Static(
                Text.assemble(
                    ("\nRemap a key in ", "dim"),
                    (self.config, "bold"),
                    (' under [keymap]:  id = "key"', "dim"),
                )
            )
        yield FittingFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        # Focused, so up/down/page keys scroll a list longer than a small terminal.
        self.query_one(VerticalScroll).focus()
