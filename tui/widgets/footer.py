"""The built-in Footer, fitted to the terminal: where not every key fits (80 columns),
it ends at a whole key with a pointer to the help, instead of cutting a key in half.
Every key stays in the help (`?`, always first) and in the command palette."""

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel

MORE = "… ? all keys"


class FittingFooter(Footer):
    def compose(self) -> ComposeResult:
        room = self.app.size.width - cell_len(MORE) - 1
        used = 0
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-grouped"):
                used += cell_len(widget.key_display) + 1 + cell_len(widget.description) + 1
                if used > room:
                    yield FooterLabel(MORE)
                    return
            elif isinstance(widget, FooterKey | FooterLabel):
                used += cell_len(getattr(widget, "key_display", "") or str(widget.render())) + 1
            yield widget

    def on_resize(self) -> None:
        self.call_after_refresh(self.recompose)
