"""A yes/no question before something destructive (a kill, quitting a running run)."""

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.bindings import CONFIRM
from tui.widgets.footer import FittingFooter


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = CONFIRM
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 60;
        max-width: 90%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 1 2;
    }
    ConfirmScreen #question { text-style: bold; }
    ConfirmScreen #keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="question")
            if self.detail:
                yield Static(self.detail, id="detail")
            yield Static("", id="keys")
        yield FittingFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        # Generated from the active bindings, so a remapped key shows as remapped.
        yes, no = [], []
        for key, active in self.active_bindings.items():
            if active.binding.action.startswith("answer("):
                shown = self.app.get_key_display(active.binding)
                (yes if "True" in active.binding.action else no).append(shown or key)
        self.query_one("#keys", Static).update(f"{' / '.join(yes)}: yes    {' / '.join(no)}: no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
