"""One broker's column on the Run screen: state, rates and lag with sparklines, latencies,
losses, the ledger, CPU and memory.

Updated in place twice a second: each part is redrawn only when its text changed, with
no layout pass (the column's shape never changes), and each Sparkline gets a new list.
"""

import re

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from lab import brokers as registry
from lab.app.format import mebibytes as mib
from lab.app.format import millis as ms
from lab.app.format import number as n
from lab.metrics import BrokerSnapshot
from tui.format import network_text, phase_text, state_text
from tui.widgets.features import features_text


class Readout(Static):
    """A Static that skips the redraw when its content did not change, and the layout pass
    unless its height may have: a layout of the whole screen twice a second is most of
    what the dashboard would otherwise cost."""

    # Readouts whose text may wrap (the header, the summary row) set this to True; they
    # are laid out again only when their text goes from one line to more or back.
    WRAPS = False

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self._shown: object = None
        self._wrapped: bool | None = None

    def show(self, content: Text | str) -> None:
        key = (content.plain, tuple(content.spans)) if isinstance(content, Text) else content
        if key == self._shown:
            return
        self._shown = key
        layout = False
        if self.WRAPS:
            plain = content.plain if isinstance(content, Text) else content
            wrapped = cell_len(plain) > max(self.content_size.width, 1)
            layout, self._wrapped = wrapped != self._wrapped, wrapped
        self.update(content, layout=layout)

    def on_resize(self) -> None:
        if self.WRAPS:
            self._wrapped = None  # the next show() decides again


def emulator_titles(number: int, broker: str, display: str, server: str | None) -> list[str]:
    """An emulator's column titles, longest first: what it emulates and on which server,
    as far as the width allows (the tooltip says it all)."""
    head = f"{number} {broker}"
    if server is None:
        what = f"{display} emulator"
    elif "emulator" in server.lower():
        what = server  # "Pub/Sub emulator 0.8.20" says both
    else:
        what = f"{display} emulator: {server}"
    titles = [f"{head} · {what}"]
    # Where the broker's name is the service's ("kinesis", "Kinesis"), the display name
    # can stand for both.
    if re.sub(r"[^a-z0-9]", "", display.lower()) == broker and what.startswith(display):
        titles.append(f"{number} {what}")
    if server:
        titles.append(f"{head} · {server}")
    return [*titles, f"{head} · emulator", head]


class BrokerColumn(Vertical):
    DEFAULT_CSS = """
    BrokerColumn {
        height: auto;
        border: round $panel-lighten-2;
        border-title-style: bold;
        padding: 0 1;
    }
    BrokerColumn.-selected {
        border: heavy $accent;
        border-title-color: $accent;
    }
    BrokerColumn .metric { height: auto; }
    BrokerColumn .metric Readout { width: 15; }
    BrokerColumn .metric Sparkline { width: 1fr; margin-left: 1; }
    BrokerColumn #rest { height: 6; }
    BrokerColumn #features { height: 5; display: none; margin-top: 1; }
    BrokerColumn #features.-on { display: block; }
    BrokerColumn #subscribers { height: auto; display: none; margin-top: 1; }
    BrokerColumn #subscribers.-on { display: block; }
    BrokerColumn #requests { height: 2; display: none; margin-top: 1; }
    BrokerColumn #requests.-on { display: block; }
    BrokerColumn Readout { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, broker: str, index: int, version: str | None = None) -> None:
        super().__init__(id=f"column-{broker}")
        self.broker = broker
        self.index = index
        self.titles = [f"{index + 1} {broker}"]
        plugin = registry.plugins().get(broker)  # a replay's broker may not be installed
        if plugin is not None and plugin.emulates:
            self.titles = emulator_titles(index + 1, broker, plugin.display, version)
            server = f" ({version})" if version else ""
            self.tooltip = (
                f"a local emulator{server} of {plugin.emulates}: its behaviour, not its speed"
            )
        self.border_title = self.titles[0]
        self.current: BrokerSnapshot | None = None

    def on_resize(self) -> None:
        # The border keeps a corner and a space at each end for itself.
        room = self.outer_size.width - 4
        self.border_title = next((t for t in self.titles if cell_len(t) <= room), self.titles[-1])

    def compose(self) -> ComposeResult:
        yield Readout(id="state")
        for name in ("sent", "recv", "lag"):
            with Horizontal(classes="metric"):
                yield Readout(id=f"{name}-value")
                yield Sparkline([], id=f"{name}-spark")
        yield Readout(id="rest")
        yield Readout(id="features")  # shown for runs with a [stream] stage
        yield Readout(id="subscribers")  # shown for pub-sub runs
        yield Readout(id="requests")  # shown for request-reply runs

    def on_mount(self) -> None:
        # Looked up once: show() runs twice a second for every column.
        self._state = self.query_one("#state", Readout)
        self._rest = self.query_one("#rest", Readout)
        self._features = self.query_one("#features", Readout)
        self._subscribers = self.query_one("#subscribers", Readout)
        self._requests = self.query_one("#requests", Readout)
        self._metrics = {
            name: (
                self.query_one(f"#{name}-value", Readout),
                self.query_one(f"#{name}-spark", Sparkline),
            )
            for name in ("sent", "recv", "lag")
        }

    def show(self, b: BrokerSnapshot, history: dict[str, list[float]]) -> None:
        self.current = b
        self.border_subtitle = b.state
        state = Text.assemble(phase_text(b.phase), " · ", state_text(b.state))
        if b.network:
            state.append(" · ")
            state.append_text(network_text(b.network))
        if b.producers or b.consumers:  # a replay does not know them
            state.append(f"   {b.producers}p {b.consumers}c", style="dim")
        if b.errors:
            state.append(f"  {b.errors} err", style="bold red")
        if b.last_error:
            state.append(" " + b.last_error.replace("\n", " "), style="red")
        self._state.show(state)
        values = {
            "sent": Text.assemble(("sent ", "dim"), f"{n(b.produce_rate):>7}/s"),
            "recv": Text.assemble(("recv ", "dim"), f"{n(b.consume_rate):>7}/s"),
            "lag": Text.assemble(("lag  ", "dim"), f"{n(b.lag):>7}  "),
        }
        for name, text in values.items():
            value, spark = self._metrics[name]
            value.show(text)
            spark.data = history.get(name, [])
        self._rest.show(_rest(b))
        if b.stream is not None:
            # Set once: a run has a stream stage from its first Snapshot to its last.
            self._features.set_class(True, "-on")
            self._features.show(features_text(b.stream))
        if b.subscribers:
            self._subscribers.set_class(True, "-on")
            self._subscribers.show(_subscribers(b))
        if b.requests is not None:
            self._requests.set_class(True, "-on")
            self._requests.show(_requests(b))


def _requests(b: BrokerSnapshot) -> Text:
    """The requesters' view: the round trip, and what became of the requests."""
    r = b.requests
    assert r is not None
    rt = r.round_trip
    counts = Text.assemble(
        ("replied ", "dim"),
        f"{r.replied:,}",
        ("  timed out ", "dim"),
        Text(f"{r.timed_out:,}", style="bold red" if r.timed_out else ""),
        ("  held back ", "dim"),
        Text(f"{r.held_back:,}", style="yellow" if r.held_back else ""),
    )
    return Text("\n").join([_lat("rtt", rt.p50, rt.p99, rt.count > 0), counts])


def _subscribers(b: BrokerSnapshot) -> Text:
    """One line per subscription: a slow subscriber shows next to the fast ones."""
    lines = [Text("subscriber   recv/s     lag   e2e p99  delivered", style="dim")]
    for sub in b.subscribers:
        lag = Text(f"{n(sub.lag):>7}", style="yellow" if sub.lag else "")
        p99 = ms(sub.e2e.p99) if sub.e2e.count else "-"
        lines.append(
            Text.assemble(
                f"{sub.name:<10} {n(sub.consume_rate):>8} ",
                lag,
                f" {p99:>9}",
                f"  {sub.ledger.delivered:,}",
                (f"  lost {sub.ledger.lost:,}", "bold red") if sub.ledger.lost else "",
            )
        )
    return Text("\n").join(lines)


def _lat(label: str, p50: float, p99: float, measured: bool) -> Text:
    if not measured:
        return Text.assemble((f"{label}  p50 ", "dim"), "-", ("  p99 ", "dim"), "-")
    return Text.assemble(
        (f"{label}  p50 ", "dim"), ms(p50), ("  p99 ", "dim"), ms(p99), (" ms", "dim")
    )


def _rest(b: BrokerSnapshot) -> Text:
    led = b.ledger
    # The ledger is exact, so its numbers are printed in full (no 10.0k).
    lost = Text(f"{led.lost:,}", style="bold white on red" if led.lost else "")
    lines = [
        _lat("pub", b.publish.p50, b.publish.p99, b.publish.count > 0),
        _lat("e2e", b.e2e.p50, b.e2e.p99, b.e2e.count > 0),
        Text.assemble(
            ("retention lost ", "dim"),
            Text(n(b.retention_dropped), style="yellow" if b.retention_dropped else ""),
            ("  dead ", "dim"),
            Text(n(b.dead_letters), style="yellow" if b.dead_letters else ""),
        ),
        Text.assemble(
            ("acked ", "dim"), f"{led.acked:,}", ("  delivered ", "dim"), f"{led.delivered:,}"
        ),
        Text.assemble(
            ("dup ", "dim"),
            Text(f"{led.duplicates:,}", style="yellow" if led.duplicates else ""),
            ("  in flight ", "dim"),
            f"{led.in_flight:,}",
            ("  lost ", "dim"),
            lost,
        ),
        Text.assemble(
            ("cpu ", "dim"),
            f"{n(b.cpu_percent)}%" if b.cpu_percent is not None else "-",
            ("  mem ", "dim"),
            f"{mib(b.rss_bytes)} MiB" if b.rss_bytes is not None else "-",
        ),
    ]
    return Text("\n").join(lines)
