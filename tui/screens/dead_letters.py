"""A broker's dead letters as a table (id, reason, attempts, times, payload start), with
redrive. Reading and redriving happen in a worker thread; the table is updated by row
key, never cleared. A finished run's broker may have to be started for them: its
progress lines show in the note as they come, as `lab dlq` prints them."""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Static

from lab.app import dlq
from lab.brokers.contract import DeadLetter
from lab.runtimes import Runtime
from tui.bindings import DEAD_LETTERS
from tui.screens.confirm import ConfirmScreen
from tui.widgets.footer import FittingFooter

LIMIT = 500
COLUMNS = ("id", "reason", "attempts", "first failure", "last failure", "payload")


Say = Callable[[str], None]  # a progress line, from any thread


@dataclass(frozen=True)
class DeadLetterSource:
    """Where one broker's dead letters come from; `note` says why there are none to read.
    `read(limit, say)` and `redrive(say)` tell their progress through `say`."""

    broker: str
    run_id: str
    read: Callable[[int, Say], list[DeadLetter]] | None
    redrive: Callable[[Say], int] | None
    note: str = ""


def live_source(runtime: Runtime, broker: str, run_id: str, ended: bool) -> DeadLetterSource:
    """The dead letters of a run, read and redriven through its broker. A run that `ended`
    may have stopped its broker: it is brought up for the read, and stopped again."""

    def up(say: Say) -> contextlib.AbstractContextManager:
        if not ended:
            return contextlib.nullcontext()
        return dlq.broker_up(runtime, broker, lambda b, message: say(f"{b}: {message}"))

    def read(limit: int, say: Say) -> list[DeadLetter]:
        with up(say):
            return dlq.list_dead_letters(runtime, broker, run_id, limit)

    def redrive(say: Say) -> int:
        with up(say):
            return dlq.redrive(runtime, broker, run_id)

    return DeadLetterSource(broker, run_id, read, redrive)


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else "-"


def row_of(letter: DeadLetter) -> tuple[str, ...]:
    payload = letter.payload_head.replace("\n", " ")
    return (
        letter.id,
        letter.reason,
        str(letter.attempts),
        _time(letter.first_failure),
        _time(letter.last_failure),
        payload[:48],
    )


class DeadLettersScreen(Screen[None]):
    BINDINGS = DEAD_LETTERS
    DEFAULT_CSS = """
    DeadLettersScreen #title { height: 1; padding: 0 1; background: $primary-background; }
    DeadLettersScreen #note { height: auto; padding: 0 1; color: $text-muted; }
    DeadLettersScreen DataTable { height: 1fr; }
    """

    def __init__(self, source: DeadLetterSource, confirm: bool = True) -> None:
        super().__init__()
        self.source = source
        self.confirm = confirm
        self.letters: dict[str, DeadLetter] = {}

    def compose(self) -> ComposeResult:
        yield Static(f"Dead letters: {self.source.broker}  (run {self.source.run_id})", id="title")
        yield Static(self.source.note or "reading…", id="note")
        table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
        for name in COLUMNS:
            table.add_column(name, key=name)
        yield table
        yield FittingFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        if self.source.read is not None:
            self._read()

    @work(thread=True, exclusive=True, group="dlq-read")
    def _read(self) -> None:
        try:
            letters = self.source.read(LIMIT, self._say)
        except Exception as exc:  # the broker may be down: say so, keep what is shown
            self.app.call_from_thread(self._note, f"could not read: {exc}")
            return
        self.app.call_from_thread(self.show_letters, letters)

    def _say(self, line: str) -> None:
        self.app.call_from_thread(self._note, line)

    def _note(self, text: str) -> None:
        self.query_one("#note", Static).update(text)

    def show_letters(self, letters: list[DeadLetter]) -> None:
        table = self.query_one(DataTable)
        fresh = {letter.id: letter for letter in letters}
        with self.app.batch_update():
            for key in [k for k in self.letters if k not in fresh]:
                table.remove_row(key)
            for key, letter in fresh.items():
                cells = row_of(letter)
                if key not in self.letters:
                    table.add_row(*cells, key=key)
                elif self.letters[key] != letter:
                    for column, (old, new) in zip(
                        COLUMNS, zip(row_of(self.letters[key]), cells, strict=True), strict=True
                    ):
                        if old != new:
                            table.update_cell(key, column, new)
        self.letters = fresh
        more = f" (the first {LIMIT})" if len(letters) >= LIMIT else ""
        self._note(f"{len(letters)} dead letters{more}")

    def action_redrive(self) -> None:
        if self.source.redrive is None:
            self.notify("redrive is not available here", severity="warning")
            return
        if not self.confirm:
            self._redrive()
            return
        question = f"Send every dead letter of {self.source.broker} back to its queue?"
        self.app.push_screen(ConfirmScreen(question), lambda yes: self._redrive() if yes else None)

    @work(thread=True, exclusive=True, group="dlq-redrive")
    def _redrive(self) -> None:
        try:
            count = self.source.redrive(self._say)
        except Exception as exc:
            self.app.call_from_thread(self.notify, f"redrive failed: {exc}", severity="error")
            return
        self.app.call_from_thread(self.notify, f"{count} dead letters sent back")
        self.app.call_from_thread(self.action_reload)
