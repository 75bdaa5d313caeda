"""The Session API both UIs use: start a recipe on brokers, watch Snapshots, send Commands,
stop and get a RunResult.

    session = Session(runtime)
    session.start(recipe, ["kafka", "redis"], mode="parallel")
    for snapshot in session.snapshots():   # twice a second until the run is done
        ...
    result = session.wait()                # or session.stop() to end early

Threads: the session's clock thread runs each broker's state machine and publishes a
Snapshot every `interval`; a reader thread folds worker messages in as they arrive; one
BrokerMonitor per broker owns that broker's adapter. They share one lock.
"""

import contextlib
import dataclasses
import queue
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from multiprocessing.connection import wait as wait_connections

from lab.brokers.base import RunSpec
from lab.engine.broker_run import BrokerRun
from lab.engine.commands import AddConsumer, Burst, Command, RemoveConsumer, SetRate, Stop
from lab.engine.monitor import BrokerMonitor
from lab.errors import LabError
from lab.faults import Fault
from lab.faults.inject import FaultInjector
from lab.faults.proxy_host import ProxyHost
from lab.ledger import Ledger
from lab.metrics import Event, Snapshot
from lab.recipes import Recipe
from lab.results import RunResult, environment
from lab.runtimes import BrokerState, Runtime, check_brokers

MODES = ("parallel", "sequential")
# Phases in which a broker's workers exist and faults, commands and schedules apply.
ACTIVE = ("connecting", "warmup", "running", "draining")
CONNECT_TIMEOUT = 10.0  # for workers to connect before producers start anyway
STOP_TIMEOUT = 15.0  # for workers to send their final report after "stop"


def new_run_id(recipe: Recipe) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{recipe.name}-{secrets.token_hex(2)}"


class Session:
    def __init__(
        self,
        runtime: Runtime,
        interval: float = 0.5,
        stop_started_brokers: bool = True,
    ) -> None:
        self.runtime = runtime
        self.interval = interval
        self.stop_started_brokers = stop_started_brokers
        self.lock = threading.Lock()
        self._events_lock = threading.Lock()
        self.latest: Snapshot | None = None
        self.result: RunResult | None = None
        self.events: list[Event] = []
        self._unsent_events: list[Event] = []
        self._subscribers: list[queue.Queue] = []
        self._commands: queue.Queue[Command | Fault] = queue.Queue()
        self._runs: list[BrokerRun] = []
        self._monitors: dict[str, BrokerMonitor] = {}
        self._series: dict[str, list[dict]] = {}
        self._started_brokers: list[str] = []
        self._up_lock = threading.Lock()
        self._done = threading.Event()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.faults = FaultInjector(runtime, self._event)
        self.proxies: ProxyHost | None = None

    # --- the API ----------------------------------------------------------------------

    def start(
        self,
        recipe: Recipe,
        brokers: Sequence[str] = (),
        mode: str = "parallel",
        faults: Sequence[tuple[float, Fault]] = (),
    ) -> str:
        """Start the run in the background. `faults`: (seconds, Fault) to inject at those
        times of each broker's run clock, on top of the recipe's own schedule."""
        if mode not in MODES:
            raise LabError(f"unknown mode '{mode}': choose from {', '.join(MODES)}")
        names = check_brokers(list(brokers) or list(recipe.brokers))
        schedule = [(f.at, Fault(f.action, f.broker or None, f.args)) for f in recipe.faults]
        schedule = sorted([*schedule, *faults], key=lambda item: item[0])
        self.recipe, self.mode = recipe, mode
        self.run_id = new_run_id(recipe)
        self.started_wall = datetime.now(UTC)
        self.t_start = time.monotonic()
        self._start_proxies(names)
        for name in names:
            direct = self.runtime.endpoint(name)
            client = direct
            if self.proxies is not None and name in self.proxies.ports:
                client = direct.via("127.0.0.1", self.proxies.ports[name])
            spec = RunSpec(self.run_id, name, client, recipe, admin_endpoint=direct)
            run = BrokerRun(spec)
            run.schedule = [(at, f) for at, f in schedule if f.broker in (None, name)]
            self._runs.append(run)
            self._series[name] = []
        self._event("phase", f"run {self.run_id}: {recipe.name} on {', '.join(names)} ({mode})")
        for target, name in (
            (self._clock, "lab-session-clock"),
            (self._read, "lab-session-reader"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self.run_id

    def _start_proxies(self, names: list[str]) -> None:
        """One chaos proxy per broker, in one process, for clients to connect through."""
        if not self.recipe.chaos_proxy:
            return
        routes = {n: route for n in names if (route := self.runtime.proxy_route(n))}
        log = self.runtime.settings.state_dir / "proxies.log"
        self.proxies = ProxyHost.start(routes, log_path=log)
        self.faults.proxies = self.proxies

    def subscribe(self) -> "queue.Queue[Snapshot]":
        """A queue that receives every Snapshot from now on, and None after the last."""
        q: queue.Queue = queue.Queue()
        with self.lock:
            self._subscribers.append(q)
            if self._done.is_set():
                q.put(None)
        return q

    def snapshots(self) -> Iterator[Snapshot]:
        q = self.subscribe()
        while (snap := q.get()) is not None:
            yield snap

    def command(self, cmd: Command | Fault) -> None:
        self._commands.put(cmd)

    def wait(self, timeout: float | None = None) -> RunResult | None:
        self._done.wait(timeout)
        return self.result

    def stop(self, timeout: float | None = None) -> RunResult | None:
        """End the run early (producers stop, consumers drain) and return its results."""
        if not self._done.is_set():
            self.command(Stop())
        return self.wait(timeout)

    def ledger(self, broker: str) -> Ledger:
        """The broker's ledger: every acked and delivered message by identity."""
        return next(r.ledger for r in self._runs if r.broker == broker)

    def close(self) -> None:
        """Leave nothing running: workers killed, queues torn down, started brokers stopped.
        Safe to call at any time, also after a normal end, and more than once."""
        self._closing.set()
        for run in self._runs:
            for worker in run.workers:
                worker.kill()
            run.reap(2)
        for monitor in self._monitors.values():
            monitor.stop_and_wait(10)
        if self.proxies is not None:
            self.proxies.stop()
        if self.stop_started_brokers and self._started_brokers:
            with contextlib.suppress(Exception):
                self.runtime.down(self._started_brokers)
            self._started_brokers = []

    # --- the clock thread: state machines and snapshots ----------------------------------

    def _clock(self) -> None:
        try:
            tick = 0
            while True:
                self._apply_commands()
                self._advance()
                if all(r.phase in ("done", "failed", "skipped") for r in self._runs):
                    break
                self._publish()
                tick += 1
                delay = self.t_start + tick * self.interval - time.monotonic()
                if self._closing.wait(max(0.0, delay)):
                    break
        except Exception as exc:  # an engine bug: say so, and still end the run cleanly
            self._event("error", f"engine failure: {type(exc).__name__}: {exc}")
            for run in self._runs:
                if run.phase not in ("done", "skipped"):
                    run.phase = "failed"
        self.result = self._build_result()
        self._publish(final=True)
        self._done.set()
        self.close()

    def _advance(self) -> None:
        with self.lock:
            for action in self.faults.due():
                action()
        for run in self._runs:
            while run.schedule and run.phase in ACTIVE and run.elapsed() >= run.schedule[0][0]:
                _, fault = run.schedule.pop(0)
                self._inject(fault, run)
        active = [r for r in self._runs if r.phase not in ("done", "failed", "skipped")]
        if self.mode == "sequential":
            active = active[:1]
        for run in active:
            step = getattr(self, f"_step_{run.phase}")
            step(run)

    def _step_waiting(self, run: BrokerRun) -> None:
        run.phase = "starting"
        run.started_at = self._t()
        monitor = BrokerMonitor(run, self.runtime, self.lock, self._event, self._ensure_up)
        self._monitors[run.broker] = monitor
        monitor.start()

    def _step_starting(self, run: BrokerRun) -> None:
        monitor = self._monitors[run.broker]
        if not monitor.ready.is_set():
            return
        if monitor.failed:
            run.phase = "failed"
            self._event("error", f"could not start: {monitor.failed}", run.broker)
            return
        with self.lock:
            run.start_consumers()
            run.start_producers()
        run.phase = "connecting"
        run.deadline = time.monotonic() + CONNECT_TIMEOUT

    def _step_connecting(self, run: BrokerRun) -> None:
        with self.lock:
            consumers = all(w.reported for w in run.workers if w.role == "consumer")
            ready = consumers and run.producers_ready()
        if not ready and time.monotonic() < run.deadline:
            return
        with self.lock:
            run.go(time.monotonic_ns() + 20_000_000)
        run.phase = "warmup"  # for 0 s of warm-up it lasts until the next tick
        self._event("phase", f"producing at {self.recipe.rate.rate:g} msgs/s", run.broker)

    def _step_warmup(self, run: BrokerRun) -> None:
        if run.elapsed() >= self.recipe.warmup:
            run.phase = "running"
        self._step_running(run)

    def _step_running(self, run: BrokerRun) -> None:
        late = run.elapsed() >= self.recipe.duration + self.recipe.drain_timeout
        if late and run.live("producer"):
            # Open loop: a producer sends its whole schedule, catching up after an outage.
            # A broker that never comes back must not hold the run forever.
            self._event(
                "error",
                f"producers still behind {self.recipe.drain_timeout:g} s after the end: "
                "stopping them; what they did not send is not in the ledger",
                run.broker,
            )
            with self.lock:
                run.stop_role("producer")
        if run.producers_done():
            run.phase = "draining"
            run.deadline = time.monotonic() + self.recipe.drain_timeout
            self._event("phase", "producers finished; draining", run.broker)

    def _step_draining(self, run: BrokerRun) -> None:
        with self.lock:
            drained = run.drained()
        if drained or time.monotonic() >= run.deadline:
            if not drained:
                self._event("error", "drain timeout: messages still in flight", run.broker)
            with self.lock:
                run.stop_role("consumer")
                run.stop_role("producer")
            run.phase = "stopping"
            run.deadline = time.monotonic() + STOP_TIMEOUT

    def _step_stopping(self, run: BrokerRun) -> None:
        if not run.all_done() and time.monotonic() < run.deadline:
            return
        run.reap(2)
        monitor = self._monitors[run.broker]
        monitor.stop_and_wait(30)
        with self.lock:
            counts = run.finish(monitor.final_probe)
        run.phase = "done"
        run.finished_at = self._t()
        if not counts.adds_up():
            self._event("error", f"ledger does not add up: {counts}", run.broker)
        self._event("phase", "done", run.broker)

    def _apply_commands(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            self._apply(cmd)

    def _apply(self, cmd: Command | Fault) -> None:
        targets = [r for r in self._runs if getattr(cmd, "broker", None) in (None, r.broker)]
        if isinstance(cmd, Fault):
            for run in targets:
                if run.phase in ACTIVE:
                    self._inject(cmd, run)
                else:
                    self._event(
                        "error", f"{cmd.action} ignored: {run.broker} is {run.phase}", run.broker
                    )
            return
        if isinstance(cmd, Burst | AddConsumer | RemoveConsumer):
            # The same actions as the faults of the same name: one way to do each thing.
            self._apply(_as_fault(cmd))
            return
        with self.lock:
            for run in targets:
                if isinstance(cmd, Stop):
                    if run.phase == "waiting":
                        run.phase = "skipped"
                    elif run.phase in ("starting", "connecting", "warmup", "running"):
                        run.stop_role("producer")
                elif isinstance(cmd, SetRate) and run.phase in ACTIVE:
                    self.faults.set_rate(run, cmd.multiplier)
        self._event("command", _describe(cmd))

    def _inject(self, fault: Fault, run: BrokerRun) -> None:
        try:
            with self.lock:
                self.faults.apply(fault, run)
        except LabError as exc:
            self._event("error", f"{fault.action}: {exc}", run.broker)

    # --- the reader thread --------------------------------------------------------------

    def _read(self) -> None:
        owners = {}
        while not self._done.is_set():
            with self.lock:
                for run in self._runs:
                    for w in run.workers:
                        if w.out not in owners and not w.eof:
                            owners[w.out] = (run, w)
            if not owners:
                time.sleep(0.05)
                continue
            for conn in wait_connections(list(owners), timeout=0.1):
                run, worker = owners[conn]
                try:
                    kind, body = conn.recv()
                except (EOFError, OSError):
                    worker.eof = True
                    del owners[conn]
                    conn.close()
                    continue
                with self.lock:
                    worker.reported = True
                    problem = run.on_message(worker, kind, body)
                if problem:
                    self._event("error", problem, run.broker)

    # --- snapshots, events, results ----------------------------------------------------------

    def _t(self) -> float:
        return time.monotonic() - self.t_start

    def _event(self, kind: str, message: str, broker: str | None = None) -> None:
        event = Event(round(self._t(), 3), kind, message, broker)
        with self._events_lock:  # not self.lock: events come from threads that hold it
            self.events.append(event)
            self._unsent_events.append(event)

    def _publish(self, final: bool = False) -> None:
        now = time.monotonic()
        with self.lock:
            brokers = tuple(run.snapshot(now) for run in self._runs)
            with self._events_lock:
                events, self._unsent_events = tuple(self._unsent_events), []
            t = self._t()
            for b in brokers:
                self._series[b.broker].append(b.point(t))
            phase = "done" if final else _run_phase([r.phase for r in self._runs])
            snap = Snapshot(
                run_id=self.run_id,
                recipe=self.recipe.name,
                mode=self.mode,
                seq=(self.latest.seq + 1) if self.latest else 0,
                t=round(t, 3),
                duration=self.recipe.duration,
                phase=phase,
                brokers=brokers,
                events=events,
            )
            self.latest = snap
            subscribers = list(self._subscribers)
        for q in subscribers:
            q.put(snap)
            if final:
                q.put(None)

    def _ensure_up(self, broker: str) -> None:
        """Start the broker if it is not running; remember it, to stop it at the end."""
        with self._up_lock:
            [status] = self.runtime.status([broker], sample_seconds=0)
            if status.state is BrokerState.HEALTHY:
                return
            self._event("state", f"starting {broker} ({status.state})", broker)
            self.runtime.up([broker], lambda b, msg: self._event("state", f"{b}: {msg}", b))
            self._started_brokers.append(broker)

    def _build_result(self) -> RunResult:
        statuses = {}
        with contextlib.suppress(Exception):  # the brokers may be down at the end of a drill
            statuses = {s.broker: s for s in self.runtime.status([r.broker for r in self._runs], 0)}
        brokers = {
            run.broker: run.result(
                self._series[run.broker],
                statuses[run.broker].version if run.broker in statuses else None,
            )
            for run in self._runs
        }
        return RunResult(
            run_id=self.run_id,
            recipe=dataclasses.asdict(self.recipe),
            mode=self.mode,
            started_at=self.started_wall.isoformat(timespec="seconds"),
            duration_s=round(self._t(), 3),
            environment=environment(
                self.runtime.name,
                {b: r.version for b, r in brokers.items()},
                {b: r.client for b, r in brokers.items()},
            ),
            brokers=brokers,
            events=list(self.events),
            problems=[f"{b}: {p}" for b, r in brokers.items() for p in r.problems],
        )


def _run_phase(phases: list[str]) -> str:
    if any(p in ("warmup", "running") for p in phases):
        return "running"
    if any(p in ("draining", "stopping") for p in phases):
        return "draining"
    if all(p in ("done", "failed", "skipped") for p in phases):
        return "done"
    return "starting"


def _as_fault(cmd: Burst | AddConsumer | RemoveConsumer) -> Fault:
    if isinstance(cmd, Burst):
        return Fault("burst", cmd.broker, {"n": cmd.count})
    action = "add-consumer" if isinstance(cmd, AddConsumer) else "remove-consumer"
    return Fault(action, cmd.broker)


def _describe(cmd: Command) -> str:
    target = getattr(cmd, "broker", None) or "all brokers"
    if isinstance(cmd, SetRate):
        return f"rate x{cmd.multiplier:g} on {target}"
    return "stop requested"
