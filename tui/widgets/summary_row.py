"""The line under the columns that says which broker leads on each figure."""

from rich.text import Text

from lab.metrics import BrokerSnapshot
from tui.model import leaders
from tui.widgets.broker_column import Readout


class SummaryRow(Readout):
    WRAPS = True
    DEFAULT_CSS = """
    SummaryRow {
        height: auto;
        max-height: 3;
        padding: 0 1;
        background: $boost;
    }
    """

    def show_leaders(self, brokers: tuple[BrokerSnapshot, ...]) -> None:
        text = Text("leads ", style="bold")
        for i, (figure, leader) in enumerate(leaders(brokers)):
            if i:
                text.append(" · ", style="dim")
            text.append(f"{figure} ", style="dim")
            text.append(leader, style="bold" if leader not in ("-", "=") else "dim")
        self.show(text)
