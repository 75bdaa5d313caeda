"""The dashboard app and its one factory, `make_app`, used by `lab tui` and by the tests.

The app owns what must be stopped: the Sessions it started and the brokers it brought up.
Every way out (q, ctrl+c, SIGTERM/SIGHUP, a crash caught by `run_tui`) ends in
`cleanup()`, which is idempotent and safe from any thread.
"""

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from textual import work
from textual.app import App

from lab import brokers as registry
from lab.engine.session import Session
from lab.export import export
from lab.forkserver import prestart
from lab.recipes import Recipe, list_shipped
from lab.results import RunResult
from lab.runtimes import BrokerState, BrokerStatus, Progress, Runtime
from tui.bindings import APP
from tui.commands import ActionsProvider
from tui.config import TuiConfig, default_path
from tui.feed import Feed, ReplayFeed, RunInfo
from tui.screens.confirm import ConfirmScreen
from tui.screens.dead_letters import DeadLetterSource, DeadLettersScreen, live_source
from tui.screens.help import HelpScreen, binding_rows
from tui.screens.run import RunScreen
from tui.screens.start import StartScreen

StatusFn = Callable[[list[str]], list[BrokerStatus]]
DeadLetterFn = Callable[[str, str], DeadLetterSource]
# States of a broker that is not running at all: bringing it up means the lab started it.
NOT_RUNNING = (BrokerState.STOPPED, BrokerState.KILLED, BrokerState.UNHEALTHY)
EXIT_GRACE = 5.0  # seconds for Textual to shut down after a signal, once all is stopped


class BrokerLabApp(App[int]):
    TITLE = "Broker Lab"
    BINDINGS = APP
    COMMANDS = App.COMMANDS | {ActionsProvider}

    def __init__(
        self,
        *,
        runtime: Runtime | None,
        config: TuiConfig,
        results_dir: Path,
        keep_brokers: bool,
        recipe_list: Sequence[Recipe],
        feed: Feed | None,
        info: RunInfo | None,
        broker_status: StatusFn | None,
        dead_letters: DeadLetterFn | None,
        cursor_blink: bool,
        poll_status: bool,
        handle_signals: bool,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.config = config
        self.results_dir = results_dir
        self.keep_brokers = keep_brokers
        self.recipe_list = recipe_list
        self.first_feed, self.first_info = feed, info
        self._broker_status = broker_status
        self._dead_letters = dead_letters
        self.cursor_blink = cursor_blink
        self.poll_status = poll_status
        self.handle_signals = handle_signals
        self.feeds: list[Feed] = []  # everything to close on the way out
        self.saved: set[str] = set()  # run ids whose results are written
        self.started_brokers: list[str] = []  # brought up here: stopped on the way out
        self.versions: dict[str, str] = {}  # as statuses said them, for the Run screen
        self.quitting = False
        self.signalled = 0  # the signal that asked us to quit, if one did
        self._cleanup_lock = threading.Lock()
        self._cleaned = False

    def on_mount(self) -> None:
        self.set_keymap(self.config.keymap)
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, self._on_signal, sig)
        if self.first_feed is not None and self.first_info is not None:
            self.feeds.append(self.first_feed)
            self.push_screen(RunScreen(self.first_feed, self.first_info))
        else:
            self.push_screen(StartScreen(self.recipe_list))

    # --- what the screens ask of the app ---------------------------------------------------

    @property
    def has_start_screen(self) -> bool:
        return any(isinstance(s, StartScreen) for s in self.screen_stack)

    @property
    def run_screen(self) -> RunScreen | None:
        return next((s for s in reversed(self.screen_stack) if isinstance(s, RunScreen)), None)

    @property
    def run_going(self) -> bool:
        screen = self.run_screen
        return screen is not None and screen.info.live and not screen.ended

    def broker_status(self, brokers: list[str]) -> list[BrokerStatus]:
        """Called from a worker thread."""
        if self._broker_status is not None:
            return self._remember(self._broker_status(brokers))
        if self.runtime is None:
            return []
        return self._remember(self.runtime.status(brokers, sample_seconds=0))

    def _remember(self, statuses: list[BrokerStatus]) -> list[BrokerStatus]:
        self.versions.update((s.broker, s.version) for s in statuses if s.version)
        return statuses

    def bring_up(self, brokers: list[str], progress: Progress) -> None:
        """Start the brokers that are not running and wait for them (a worker thread).
        They are remembered first, so even a start that fails half-way is undone later."""
        if self.runtime is None:
            raise RuntimeError("no runtime: this is a replay")
        statuses = self._remember(self.runtime.status(brokers, sample_seconds=0))
        before = {s.broker: s.state for s in statuses}
        for broker in brokers:
            if before.get(broker) in NOT_RUNNING and broker not in self.started_brokers:
                self.started_brokers.append(broker)
        if any(before.get(b) is not BrokerState.HEALTHY for b in brokers):
            self._remember(self.runtime.up(brokers, progress))

    def start_run(self, recipe: Recipe, brokers: list[str], mode: str) -> None:
        if self.runtime is None:
            raise RuntimeError("no runtime: this is a replay")
        names = tuple(registry.check(brokers))
        session = Session(self.runtime, stop_started_brokers=not self.keep_brokers)
        self.feeds.append(session)
        subscription = session.subscribe()
        session.start(recipe, names, mode)
        info = RunInfo(names, recipe.to_dict(), True, {n: self.versions.get(n) for n in names})
        self.push_screen(RunScreen(session, info, subscription))

    def back_to_start(self, screen: RunScreen) -> None:
        if screen.ended and self.has_start_screen and self.screen is screen:
            self.pop_screen()

    def run_ended(self, screen: RunScreen) -> None:
        self._finish_run(screen)

    @work(thread=True, group="results")
    def _finish_run(self, screen: RunScreen) -> None:
        result = screen.feed.result
        if result is None:
            self.call_from_thread(screen.note, "the run ended without results", "error")
            return
        if screen.info.live:
            path = self._save(result)
            self.call_from_thread(screen.note, f"results: {path}")
        if screen.export_pending:
            screen.export_pending = False
            self._export(screen, result)

    def _save(self, result: RunResult) -> Path:
        path = result.write(self.results_dir)
        self.saved.add(result.run_id)
        return path

    def export_run(self, screen: RunScreen) -> None:
        result = screen.feed.result
        if result is None or (screen.info.live and not screen.ended):
            screen.export_pending = True
            screen.note("export: the results are complete when the run ends; exporting then")
            self.notify("Exporting when the run ends.")
            return
        self._export_in_worker(screen, result)

    @work(thread=True, group="export")
    def _export_in_worker(self, screen: RunScreen, result: RunResult) -> None:
        self._export(screen, result)

    def _export(self, screen: RunScreen, result: RunResult) -> None:
        try:
            paths = export(result, self.results_dir, ("json", "md", "html"))
        except Exception as exc:  # a full disk or a read-only dir: say so, keep going
            self.call_from_thread(self.notify, f"export failed: {exc}", severity="error")
            return
        self.saved.add(result.run_id)
        shown = ", ".join(str(p) for p in paths)
        self.call_from_thread(screen.note, f"exported: {shown}")
        self.call_from_thread(self.notify, shown, title="exported", timeout=10)

    def show_dead_letters(self, screen: RunScreen, broker: str) -> None:
        latest = screen.model.latest
        run_id = latest.run_id if latest else "?"
        if self._dead_letters is not None:
            source = self._dead_letters(broker, run_id)
        elif not screen.info.live or self.runtime is None:
            counted = latest.broker(broker).dead_letters if latest and latest.broker(broker) else 0
            note = f"a replay: the dead letters stayed with the broker ({counted or 0} counted)"
            source = DeadLetterSource(broker, run_id, None, None, note)
        else:
            source = live_source(self.runtime, broker, run_id, ended=screen.ended)
        self.push_screen(DeadLettersScreen(source, self.config.confirm_destructive))

    # --- help, quitting, cleaning up ----------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        rows = binding_rows(self.screen, self.get_key_display)
        name = type(self.screen).__name__.removesuffix("Screen").lower() or "screen"
        self.push_screen(HelpScreen(name, rows, str(default_path())))

    async def action_quit(self) -> None:
        if self.run_going and self.config.confirm_destructive:
            self.push_screen(
                ConfirmScreen(
                    "A run is going. Stop it and quit?",
                    "The run, its workers and the brokers the lab started are stopped.",
                ),
                lambda yes: self.action_quit_now() if yes else None,
            )
            return
        self.action_quit_now()

    def action_quit_now(self) -> None:
        if self.quitting:
            return
        self.quitting = True
        self.notify("Stopping the run, its workers and the brokers the lab started…")
        self._cleanup_then_exit()

    def _on_signal(self, sig: int) -> None:
        self.signalled = sig
        self.action_quit_now()

    @work(thread=True, group="quit")
    def _cleanup_then_exit(self) -> None:
        try:
            self.cleanup()
        finally:
            if self.signalled:
                # The terminal may be gone (SIGHUP), and Textual can then hang for good in
                # its shutdown, waiting on a writer thread that died on EIO. Everything the
                # lab started is stopped by now, so make sure the process ends too.
                watchdog = threading.Timer(EXIT_GRACE, os._exit, (128 + self.signalled,))
                watchdog.daemon = True
                watchdog.start()
            self.call_from_thread(self.exit, 0)

    def cleanup(self) -> None:
        """Leave nothing running that this app started. Blocking; any thread; idempotent."""
        with self._cleanup_lock:
            if self._cleaned:
                return
            self._cleaned = True
        for feed in self.feeds:
            with contextlib.suppress(Exception):
                feed.close()
            result = getattr(feed, "result", None)
            if isinstance(feed, Session) and result is None:
                result = feed.wait(5)
            if isinstance(feed, Session) and result and result.run_id not in self.saved:
                with contextlib.suppress(Exception):
                    self._save(result)
        if self.started_brokers and not self.keep_brokers and self.runtime is not None:
            with contextlib.suppress(Exception):
                self.runtime.down(self.started_brokers)
            self.started_brokers = []

    async def on_unmount(self) -> None:
        await asyncio.to_thread(self.cleanup)


def make_app(
    runtime: Runtime | None = None,
    *,
    replay: RunResult | None = None,
    feed: Feed | None = None,
    info: RunInfo | None = None,
    config: TuiConfig | None = None,
    results_dir: Path = Path("results"),
    keep_brokers: bool = False,
    recipe_list: Sequence[Recipe] | None = None,
    broker_status: StatusFn | None = None,
    dead_letters: DeadLetterFn | None = None,
    replay_speed: float = 1.0,
    cursor_blink: bool = True,
    poll_status: bool = True,
    handle_signals: bool = False,
) -> BrokerLabApp:
    """The dashboard. With `replay` (or a ready `feed` and its `info`) it opens on the Run
    screen; otherwise on the Start screen, over `runtime`."""
    if replay is not None:
        replay_feed = ReplayFeed(replay, speed=replay_speed)
        feed, info = replay_feed, replay_feed.info
    if runtime is not None and feed is None:
        prestart()
    return BrokerLabApp(
        runtime=runtime,
        config=config or TuiConfig(),
        results_dir=results_dir,
        keep_brokers=keep_brokers,
        recipe_list=list_shipped() if recipe_list is None else recipe_list,
        feed=feed,
        info=info,
        broker_status=broker_status,
        dead_letters=dead_letters,
        cursor_blink=cursor_blink,
        poll_status=poll_status,
        handle_signals=handle_signals,
    )
