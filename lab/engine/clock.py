"""The session's clock thread: every `interval` it applies the commands that came in, moves
each broker's part of the run on through its phases, injects the faults that are due and
publishes a Snapshot.

    waiting -> starting -> connecting -> warmup -> running -> draining -> stopping -> done
"""

import queue
import threading
import time
from typing import TYPE_CHECKING

from lab.engine.broker_run import BrokerRun
from lab.engine.commands import Command, Stop
from lab.engine.monitor import BrokerMonitor
from lab.errors import LabError
from lab.faults import Fault
from lab.phases import ACTIVE, TERMINAL, Phase

if TYPE_CHECKING:
    from lab.engine.session import Session

CONNECT_TIMEOUT = 10.0  # for workers to connect before producers start anyway
STOP_TIMEOUT = 15.0  # for workers to send their final report after "stop"
GO_DELAY_NS = 20_000_000  # producers get the clock zero this far ahead, all at once


class RunClock:
    def __init__(self, session: "Session") -> None:
        self.s = session
        # By broker: the thread that reaps its workers and waits for the monitor's final
        # probe and teardown, which take seconds on a loaded machine: not on this thread,
        # whose every tick is a Snapshot.
        self.closers: dict[str, threading.Thread] = {}
        self.steps = {
            Phase.WAITING: self._waiting,
            Phase.STARTING: self._starting,
            Phase.CONNECTING: self._connecting,
            Phase.WARMUP: self._warmup,
            Phase.RUNNING: self._running,
            Phase.DRAINING: self._draining,
            Phase.STOPPING: self._stopping,
        }

    def run(self) -> None:
        s = self.s
        try:
            tick = 0
            while True:
                self._apply_commands()
                self._advance()
                if all(r.phase in TERMINAL for r in s.runs):
                    break
                s.publish()
                tick += 1
                delay = s.t_start + tick * s.interval - time.monotonic()
                if s.closing.wait(max(0.0, delay)):
                    break
        except Exception as exc:  # an engine bug: say so, and still end the run cleanly
            s.say("error", f"engine failure: {type(exc).__name__}: {exc}")
            for run in s.runs:
                if run.phase not in (Phase.DONE, Phase.SKIPPED):
                    run.phase = Phase.FAILED
        s.finish()

    # --- commands and faults ------------------------------------------------------------

    def _apply_commands(self) -> None:
        while True:
            try:
                cmd = self.s.commands.get_nowait()
            except queue.Empty:
                return
            self._apply(cmd)

    def _apply(self, cmd: Command) -> None:
        s = self.s
        targets = [r for r in s.runs if cmd.broker in (None, r.broker)]
        if isinstance(cmd, Fault):
            for run in targets:
                if run.phase in ACTIVE:
                    self.inject(cmd, run)
                else:
                    s.say("error", f"{cmd.action} ignored: {run.broker} is {run.phase}", run.broker)
            return
        if isinstance(cmd, Stop):
            with s.lock:
                for run in targets:
                    if run.phase is Phase.WAITING:
                        run.phase = Phase.SKIPPED
                    elif run.phase in (Phase.STARTING, *ACTIVE):
                        run.stop_role("producer")
            s.say("command", "stop requested")

    def inject(self, fault: Fault, run: BrokerRun) -> None:
        try:
            with self.s.lock:
                self.s.faults.apply(fault, run)
        except LabError as exc:
            self.s.say("error", f"{fault.action}: {exc}", run.broker)

    def _advance(self) -> None:
        s = self.s
        with s.lock:
            for action in s.faults.due():
                action()
        for run in s.runs:
            while run.schedule and run.phase in ACTIVE and run.elapsed() >= run.schedule[0][0]:
                _, fault = run.schedule.pop(0)
                self.inject(fault, run)
        active = [r for r in s.runs if r.phase not in TERMINAL]
        if s.mode == "sequential":
            active = active[:1]
        for run in active:
            self.steps[run.phase](run)

    # --- one broker's phases ------------------------------------------------------------

    def _waiting(self, run: BrokerRun) -> None:
        s = self.s
        run.phase = Phase.STARTING
        run.started_at = s.elapsed()
        monitor = BrokerMonitor(run, s.runtime, s.lock, s.say, s.ensure_up, s.elapsed)
        s.monitors[run.broker] = monitor
        monitor.start()

    def _starting(self, run: BrokerRun) -> None:
        s = self.s
        monitor = s.monitors[run.broker]
        if not monitor.ready.is_set():
            return
        if monitor.failed:
            run.phase = Phase.FAILED
            s.say("error", f"could not start: {monitor.failed}", run.broker)
            return
        with s.lock:
            run.start_consumers()
            run.start_producers()
        run.phase = Phase.CONNECTING
        run.deadline = time.monotonic() + CONNECT_TIMEOUT

    def _connecting(self, run: BrokerRun) -> None:
        s = self.s
        with s.lock:
            consumers = all(w.reported for w in run.workers if w.role == "consumer")
            ready = consumers and run.producers_ready()
        if not ready and time.monotonic() < run.deadline:
            return
        with s.lock:
            run.go(time.monotonic_ns() + GO_DELAY_NS)
        run.phase = Phase.WARMUP  # for 0 s of warm-up it lasts until the next tick
        s.say("phase", f"producing at {s.recipe.rate.rate:g} msgs/s", run.broker)

    def _warmup(self, run: BrokerRun) -> None:
        if run.elapsed() >= self.s.recipe.warmup:
            run.phase = Phase.RUNNING
        self._running(run)

    def _running(self, run: BrokerRun) -> None:
        s = self.s
        recipe = s.recipe
        late = run.elapsed() >= recipe.duration + recipe.drain_timeout
        if late and run.live("producer"):
            # Open loop: a producer sends its whole schedule, catching up after an outage.
            # A broker that never comes back must not hold the run forever.
            s.say(
                "error",
                f"producers still behind {recipe.drain_timeout:g} s after the end: "
                "stopping them; what they did not send is not in the ledger",
                run.broker,
            )
            with s.lock:
                run.stop_role("producer")
        if run.producers_done():
            run.produced_for = run.elapsed()
            run.phase = Phase.DRAINING
            run.deadline = time.monotonic() + recipe.drain_timeout
            s.say("phase", "producers finished; draining", run.broker)

    def _draining(self, run: BrokerRun) -> None:
        s = self.s
        with s.lock:
            drained = run.drained()
        if drained or time.monotonic() >= run.deadline:
            if not drained:
                s.say("error", "drain timeout: messages still in flight", run.broker)
            with s.lock:
                run.stop_role("consumer")
                run.stop_role("producer")
            run.phase = Phase.STOPPING
            run.deadline = time.monotonic() + STOP_TIMEOUT

    def _stopping(self, run: BrokerRun) -> None:
        s = self.s
        monitor = s.monitors[run.broker]
        closer = self.closers.get(run.broker)
        if closer is None:
            if not run.all_done() and time.monotonic() < run.deadline:
                return
            closer = threading.Thread(
                target=_close, args=(run, monitor), name=f"lab-close-{run.broker}", daemon=True
            )
            self.closers[run.broker] = closer
            closer.start()
        if closer.is_alive():
            return
        with s.lock:
            counts = run.finish(monitor.final_probe)
        run.phase = Phase.DONE
        run.finished_at = s.elapsed()
        if counts.lost:
            s.say("error", run.loss_problem(counts.lost), run.broker)
        if not counts.adds_up():
            s.say("error", f"ledger does not add up: {counts}", run.broker)
        s.say("phase", "done", run.broker)


def _close(run: BrokerRun, monitor: BrokerMonitor) -> None:
    """Workers that do not exit within 2 s are killed; then the final probe and teardown."""
    run.reap(2)
    monitor.stop_and_wait(30)
