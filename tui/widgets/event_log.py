"""The event log under the columns: faults, state changes, errors, phases, commands.

A RichLog only ever appends, so a busy run never redraws what is already shown.
"""

from rich.text import Text
from textual.widgets import RichLog

from lab.metrics import Event
from tui.format import KIND_STYLE


class EventLog(RichLog):
    DEFAULT_CSS = """
    EventLog {
        height: 1fr;
        min-height: 3;
        border-top: solid $panel-lighten-2;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self) -> None:
        super().__init__(max_lines=2000, wrap=True, markup=False, auto_scroll=True, id="events")
        self.can_focus = False
        self.count = 0
        self.lines_text: list[str] = []  # plain text of what was written, for tests

    def add(self, events: list[Event]) -> None:
        for event in events:
            line = Text.assemble(
                (f"{event.t:7.1f}s ", "dim"),
                (f"{(event.broker or '-'):<9}", "bold" if event.broker else "dim"),
                (f"{event.kind:<8}", KIND_STYLE.get(event.kind, "")),
                event.message,
            )
            self.write(line)
            self.lines_text.append(line.plain)
            self.count += 1
        del self.lines_text[:-2000]
