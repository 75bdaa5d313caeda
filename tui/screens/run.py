"""The Run screen: one column per broker, the run's clock above, the event log below, and
the keys that break brokers and make peaks.

Poll, render, re-arm: a worker thread waits on the Session's Snapshot queue and folds each
Snapshot into the model; the (coalesced) message it posts makes the screen render the
model on the UI thread, in place, inside one batch update. Rendering is skipped while the
display is frozen or a dialog is on top, and catches up when it is back.
"""

import queue

from textual import work
from textual.app import ComposeResult
from textual.containers import HorizontalScroll
from textual.message import Message
from textual.screen import Screen
from textual.worker import get_current_worker

from lab.faults import Fault
from lab.metrics import BrokerSnapshot, Event
from lab.phases import ACTIVE
from tui.bindings import RUN
from tui.feed import Feed, RunInfo, whole_run
from tui.model import RunModel
from tui.screens.confirm import ConfirmScreen
from tui.widgets.broker_column import BrokerColumn
from tui.widgets.event_log import EventLog
from tui.widgets.footer import FittingFooter
from tui.widgets.run_header import RunHeader
from tui.widgets.summary_row import SummaryRow

COLUMN_MIN = 38
TALL = 40


class SnapshotArrived(Message):
    """The model has something new. Coalesced: one waiting message stands for all."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotArrived)


class RunEnded(Message):
    """The feed sent its last Snapshot."""


class RunScreen(Screen[None]):
    BINDINGS = RUN
    DEFAULT_CSS = """
    RunScreen #columns { height: auto; scrollbar-size-horizontal: 0; }
    RunScreen.-tall BrokerColumn .metric { height: 3; }
    RunScreen.-tall BrokerColumn .metric Sparkline { height: 3; }
    """

    def __init__(
        self, feed: Feed, info: RunInfo, subscription: "queue.Queue | None" = None
    ) -> None:
        super().__init__()
        self.feed = feed
        # A live run is subscribed to before it starts, so its first events are not missed.
        self.subscription = subscription
        self.info = info
        self.model = RunModel()
        self.selected = 0
        self.frozen = False
        self.ended = False
        self.export_pending = False
        self.rendered_seq = 0
        self.shown_columns = len(info.brokers)
        self.column_width = COLUMN_MIN
        self.first_shown = 0  # the leftmost column on screen when they do not all fit
        self._columns: list[BrokerColumn] = []

    # --- layout and the snapshot loop ---------------------------------------------------

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        with HorizontalScroll(id="columns", can_focus=False):
            for i, broker in enumerate(self.info.brokers):
                yield BrokerColumn(broker, i, self.info.versions.get(broker))
        yield SummaryRow(id="summary")
        yield EventLog()
        yield FittingFooter(compact=True, show_command_palette=False)

    def on_resize(self) -> None:
        # Columns share the width, but never get narrower than they can be read: at 80
        # columns two fit and the others are a scroll (arrows, 1-4) away.
        columns = self.columns
        shown = max(1, min(len(columns), self.size.width // COLUMN_MIN))
        width = self.size.width // shown
        for column in columns:
            column.styles.width = width
        self.shown_columns, self.column_width = shown, width
        # A tall terminal gets taller sparklines rather than an emptier event log.
        self.set_class(self.size.height >= TALL, "-tall")
        self.action_select(self.selected)

    def on_mount(self) -> None:
        # Looked up once: they are drawn twice a second.
        self._header_bar = self.query_one("#header", RunHeader)
        self._summary = self.query_one("#summary", SummaryRow)
        self._log = self.query_one(EventLog)
        self._header_bar.show("waiting for the first snapshot…")
        self.action_select(0)
        self._read_feed()

    @work(thread=True, exit_on_error=False, group="feed")
    def _read_feed(self) -> None:
        subscription = self.subscription or self.feed.subscribe()
        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                snap = subscription.get(timeout=0.25)
            except queue.Empty:
                continue
            if snap is None:
                self.model.ended = True
                self.post_message(SnapshotArrived())
                self.post_message(RunEnded())
                return
            self.model.add(snap)
            self.post_message(SnapshotArrived())

    def on_snapshot_arrived(self, _: SnapshotArrived) -> None:
        self.render_model()

    def on_screen_resume(self) -> None:
        self.render_model()

    def render_model(self) -> None:
        if self.frozen or not self.is_current:
            return
        view = self.model.take()
        if view is None:
            return
        self.rendered_seq = view.seq
        snap = view.snapshot
        with self.app.batch_update():
            self._header()
            for column in self.columns:
                broker = snap.broker(column.broker)
                if broker is not None:
                    column.show(broker, view.history.get(column.broker, {}))
            self._summary.show_leaders(snap.brokers)
            self._log.add(view.events)

    def _header(self) -> None:
        snap = self.model.latest
        if snap is None:
            return
        hint = ""
        total = len(self.info.brokers)
        if self.shown_columns < total:
            last = self.first_shown + self.shown_columns
            hint = f"◀ {self.first_shown + 1}-{last} of {total} ▶"
        self._header_bar.show_run(
            snap, self.info.recipe.get("rate", {}), not self.info.live, self.frozen, hint
        )

    def on_run_ended(self, _: RunEnded) -> None:
        self.ended = True
        result, last = self.feed.result, self.model.latest
        if result is not None and last is not None:
            self.model.finish(whole_run(result, last))
            self.render_model()
        self.refresh_bindings()
        self.app.run_ended(self)

    def note(self, message: str, kind: str = "lab") -> None:
        """Put a line of the UI's own (export paths, results) into the event log."""
        t = self.model.latest.t if self.model.latest else 0.0
        self.model.note(Event(t, kind, message))
        self.render_model()

    # --- selecting a broker column ---------------------------------------------------------

    @property
    def columns(self) -> list[BrokerColumn]:
        if not self._columns:
            self._columns = list(self.query(BrokerColumn))
        return self._columns

    @property
    def broker(self) -> str:
        return self.info.brokers[self.selected]

    def action_select(self, index: int) -> None:
        columns = self.columns
        if not 0 <= index < len(columns):
            return
        self.selected = index
        for i, column in enumerate(columns):
            column.set_class(i == index, "-selected")
        # Keep the selected column on screen; the scroll follows the selection.
        if index < self.first_shown:
            self.first_shown = index
        elif index >= self.first_shown + self.shown_columns:
            self.first_shown = index - self.shown_columns + 1
        self.first_shown = max(0, min(self.first_shown, len(columns) - self.shown_columns))
        self.query_one("#columns").scroll_to(x=self.first_shown * self.column_width, animate=False)
        self._header()

    def action_select_step(self, step: int) -> None:
        self.action_select((self.selected + step) % len(self.info.brokers))

    # --- faults and peaks on the selected broker ------------------------------------------

    @property
    def current(self) -> BrokerSnapshot | None:
        """The selected broker as the latest Snapshot shows it: the toggles (p, l, n) go
        by what the engine says is in force, whoever put it there."""
        return self.columns[self.selected].current

    def send(self, fault: Fault) -> None:
        if not self.info.live:
            self.notify("This is a replay: faults need a live run.", severity="warning")
            return
        if self.ended:
            self.notify("The run has ended.", severity="warning")
            return
        current = self.current
        if current is not None and current.phase not in ACTIVE:
            # The engine ignores faults outside these phases: say so rather than nothing.
            self.notify(f"{current.broker} is {current.phase}: faults apply while it runs.")
            return
        if fault.kind.destructive and self.app.config.confirm_destructive:
            question = f"{fault.describe().capitalize()}?"
            detail = "Turn these questions off with confirm_destructive = false in the config."
            self.app.push_screen(
                ConfirmScreen(question, detail),
                lambda yes: self._send_now(fault) if yes else None,
            )
            return
        self._send_now(fault)

    def _send_now(self, fault: Fault) -> None:
        self.feed.command(fault)
        self.notify(fault.describe(), title="sent", timeout=3)

    def action_fault(self, action: str) -> None:
        self.send(Fault(action, self.broker))

    def action_pause_broker(self) -> None:
        paused = self.current is not None and self.current.state == "paused"
        self.send(Fault("resume" if paused else "pause", self.broker))

    def action_latency_up(self) -> None:
        steps = self.app.config.latency_steps_ms
        now = (self.current.network.get("latency", {}) if self.current else {}).get("ms", 0)
        higher = [ms for ms in steps if ms > now]
        self.send(Fault("latency", self.broker, {"ms": higher[0] if higher else steps[-1]}))

    def action_latency_clear(self) -> None:
        # `heal` is the fault that removes added latency (it heals a partition too).
        self.send(Fault("heal", self.broker))

    def action_partition(self) -> None:
        cut = self.current is not None and "blackhole" in self.current.network
        self.send(Fault("heal" if cut else "blackhole", self.broker))

    def action_peak(self, name: str) -> None:
        spec = self.app.config.peaks[name]
        self.send(Fault("peak", self.broker, {"x": spec["x"], "for": spec["for"]}))

    # --- other screens, export, display -----------------------------------------------------

    def action_dead_letters(self) -> None:
        self.app.show_dead_letters(self, self.broker)

    def action_export(self) -> None:
        self.app.export_run(self)

    def action_toggle_display(self) -> None:
        self.frozen = not self.frozen
        hold = getattr(self.feed, "hold", None)
        if hold is not None:
            hold(self.frozen)
        if self.frozen:
            self._header()
        else:
            self.render_model()

    def action_back(self) -> None:
        self.app.back_to_start(self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return self.ended and self.app.has_start_screen
        return True
