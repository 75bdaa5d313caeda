"""The Session API both UIs use: start a recipe on brokers, watch Snapshots, send Commands,
stop and get a RunResult.

    session = Session(runtime)
    session.start(recipe, ["kafka", "redis"], mode="parallel")
    for snapshot in session.snapshots():   # twice a second until the run is done
        ...
    result = session.wait()                # or session.stop() to end early

Threads: the clock (clock.py) runs each broker's state machine and publishes a Snapshot
every `interval`; the reader (reader.py) folds worker messages in as they arrive; one
BrokerMonitor per broker owns that broker's adapter. They share one lock.
"""

import contextlib
import queue
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from lab import brokers as registry
from lab.brokers.contract import RunSpec
from lab.engine.broker_run import BrokerRun
from lab.engine.clock import RunClock
from lab.engine.commands import Command, Stop
from lab.engine.events import EventLog
from lab.engine.monitor import BrokerMonitor
from lab.engine.reader import read_workers
from lab.errors import LabError
from lab.faults import Fault
from lab.faults.inject import FaultInjector
from lab.faults.proxy_host import ProxyHost
from lab.ledger import Ledger
from lab.metrics import Event, Snapshot
from lab.phases import Phase, run_phase
from lab.recipes import Recipe
from lab.results import RunResult, environment
from lab.runtimes import BrokerState, Runtime
from lab.stream.run import store_endpoint

MODES = ("parallel", "sequential")


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
        self.latest: Snapshot | None = None
        self.result: RunResult | None = None
        self.log = EventLog(self.elapsed)
        self.commands: queue.Queue[Command] = queue.Queue()
        self.runs: list[BrokerRun] = []
        self.monitors: dict[str, BrokerMonitor] = {}
        self.closing = threading.Event()
        self.t_start = time.monotonic()
        self.faults = FaultInjector(runtime, self.say)
        self.faults.on_restarted = self._restarted
        self.proxies: ProxyHost | None = None
        self._subscribers: list[queue.Queue] = []
        self._series: dict[str, list[dict]] = {}
        self._started_brokers: list[str] = []
        self._up_lock = threading.Lock()
        self._close_lock = threading.Lock()  # the clock's finish and a quitting UI may race
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []

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
        names = registry.check(list(brokers) or list(recipe.brokers))
        cannot = [registry.get(n).cannot(recipe.pattern) for n in names]
        if any(cannot):
            raise LabError("; ".join(c for c in cannot if c))
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
            state = self.runtime.settings.state_dir
            store = store_endpoint(recipe, self.runtime)  # the [stream] stage's, if any
            spec = RunSpec(self.run_id, name, client, recipe, direct, state, store)
            run = BrokerRun(spec)
            run.schedule = [(at, f) for at, f in schedule if f.broker in (None, name)]
            self.runs.append(run)
            self._series[name] = []
        self.say("phase", f"run {self.run_id}: {recipe.name} on {', '.join(names)} ({mode})")
        clock = RunClock(self)

        def reader() -> None:
            read_workers(self.runs, self.lock, self._done, self.say)

        for target, name in ((clock.run, "lab-session-clock"), (reader, "lab-session-reader")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self.run_id

    def _start_proxies(self, names: list[str]) -> None:
        """One chaos proxy per broker, in one process, for clients to connect through."""
        if not self.recipe.chaos_proxy:
            return
        routes = {n: route for n in names if (route := self.runtime.proxy_route(n))}
        log = self.runtime.settings.ensure_state_dir() / "proxies.log"
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

    def command(self, cmd: Command) -> None:
        self.commands.put(cmd)

    def wait(self, timeout: float | None = None) -> RunResult | None:
        self._done.wait(timeout)
        return self.result

    def stop(self, timeout: float | None = None) -> RunResult | None:
        """End the run early (producers stop, consumers drain) and return its results."""
        if not self._done.is_set():
            self.command(Stop())
        return self.wait(timeout)

    @property
    def events(self) -> list[Event]:
        return self.log.all()

    def ledger(self, broker: str) -> Ledger:
        """The broker's ledger: every acked and delivered message by identity."""
        return next(r.ledger for r in self.runs if r.broker == broker)

    def close(self) -> None:
        """Leave nothing running: workers killed, queues torn down, started brokers stopped.
        Safe to call at any time, also after a normal end, more than once, and from two
        threads at once."""
        self.closing.set()
        with self._close_lock:
            for run in self.runs:
                for worker in run.workers:
                    worker.kill()
                run.reap(2)
            for monitor in self.monitors.values():
                monitor.stop_and_wait(10)
            if self.proxies is not None:
                self.proxies.stop()
            if self.stop_started_brokers and self._started_brokers:
                with contextlib.suppress(Exception):
                    self.runtime.down(self._started_brokers)
                self._started_brokers = []

    # --- for the clock, the reader and the monitors ----------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.t_start

    def say(self, kind: str, message: str, broker: str | None = None) -> None:
        self.log.say(kind, message, broker)

    def publish(self, final: bool = False) -> None:
        now = time.monotonic()
        with self.lock:
            network = self.faults.network_faults
            brokers = tuple(r.snapshot(now, network(r.broker)) for r in self.runs)
            t = self.elapsed()
            for b in brokers:
                self._series[b.broker].append(b.point(t))
            snap = Snapshot(
                run_id=self.run_id,
                recipe=self.recipe.name,
                mode=self.mode,
                seq=(self.latest.seq + 1) if self.latest else 0,
                t=round(t, 3),
                duration=self.recipe.duration,
                phase=Phase.DONE if final else run_phase(r.phase for r in self.runs),
                brokers=brokers,
                events=self.log.take_new(),
            )
            self.latest = snap
            subscribers = list(self._subscribers)
        for q in subscribers:
            q.put(snap)
            if final:
                q.put(None)

    def finish(self) -> None:
        """The clock's last act: results, the final Snapshot, and nothing left running."""
        self.result = self._build_result()
        self.publish(final=True)
        self._done.set()
        self.close()

    def _restarted(self, broker: str) -> None:
        monitor = self.monitors.get(broker)
        if monitor is not None:
            monitor.restarted.set()

    def ensure_up(self, broker: str) -> None:
        """Start the broker if it is not running; remember it, to stop it at the end."""
        with self._up_lock:
            [status] = self.runtime.status([broker], sample_seconds=0)
            if status.state is BrokerState.HEALTHY:
                return
            self.say("state", f"starting {broker} ({status.state})", broker)
            self.runtime.up([broker], lambda b, msg: self.say("state", f"{b}: {msg}", b))
            self._started_brokers.append(broker)

    def _build_result(self) -> RunResult:
        statuses = {}
        with contextlib.suppress(Exception):  # the brokers may be down at the end of a drill
            statuses = {s.broker: s for s in self.runtime.status([r.broker for r in self.runs], 0)}
        brokers = {
            run.broker: run.result(
                self._series[run.broker],
                statuses[run.broker].version if run.broker in statuses else None,
            )
            for run in self.runs
        }
        return RunResult(
            run_id=self.run_id,
            recipe=self.recipe.to_dict(),
            mode=self.mode,
            started_at=self.started_wall.isoformat(timespec="seconds"),
            duration_s=round(self.elapsed(), 3),
            environment=environment(
                self.runtime.name,
                {b: r.version for b, r in brokers.items()},
                {b: r.client for b, r in brokers.items()},
            ),
            brokers=brokers,
            events=self.events,
            problems=[f"{b}: {p}" for b, r in brokers.items() for p in r.problems],
        )
