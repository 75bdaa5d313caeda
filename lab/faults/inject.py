"""Carrying out a Fault during a run. The Session calls apply(); nothing here knows a UI.

Process faults go through the runtime, network faults through the chaos proxy host,
consumer and producer faults to the workers. Actions that take seconds (a restart)
run on their own thread so the Session's clock keeps its cadence.
"""

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.faults import ACTIONS, NETWORK_ACTIONS, Fault
from lab.runtimes import Runtime

if TYPE_CHECKING:  # the engine calls down into faults, never the other way round
    from lab.engine.broker_run import BrokerRun

CRASH_RESTART_DELAY = 1.0  # a supervisor brings a crashed consumer back after this long

Say = Callable[[str, str, str | None], None]  # (kind, message, broker)


class FaultInjector:
    def __init__(self, runtime: Runtime, say: Say, proxies: object | None = None) -> None:
        self.runtime = runtime
        self.say = say
        self.proxies = proxies  # lab.faults.proxy_host.ProxyHost, when the run has one
        self.later: list[tuple[float, Callable[[], None]]] = []  # (monotonic due, action)

    def apply(self, fault: Fault, run: "BrokerRun") -> None:
        """Inject `fault` into one broker's run. Must be called with the session's lock."""
        action, broker = fault.action, run.broker
        self.say("fault", fault.describe().replace("all brokers", broker), broker)
        if action in ("kill", "pause", "resume"):
            getattr(self.runtime, action)(broker)
        elif action == "restart":
            self._background(broker, lambda: self.runtime.restart(broker))
        elif action in NETWORK_ACTIONS:
            if self.proxies is None or broker not in self.proxies.ports:
                raise LabError(
                    f"network faults need the chaos proxy, which {broker} does not have in "
                    "this run (recipe chaos_proxy = false, or an external Kafka)"
                )
            self.proxies.set(broker, action, **{k: fault.arg(k) for k in ACTIONS[action][1]})
        elif action == "crash-consumer":
            self._crash_consumer(run)
        elif action == "slow-consumers":
            for w in run.live("consumer"):
                w.tell("slow", fault.arg("factor"))
        elif action == "add-consumer":
            run.add_worker("consumer").tell("start", run.t0_ns, run.multiplier)
        elif action == "remove-consumer":
            consumers = run.live("consumer")
            if consumers:
                consumers[-1].stop()
        elif action == "peak":
            self.set_rate(run, fault.arg("x"))
            self.later.append((time.monotonic() + fault.arg("for"), lambda: self._end_peak(run)))
        elif action == "burst":
            producers = run.live("producer")
            n = int(fault.arg("n"))
            for i, w in enumerate(producers):
                w.tell("burst", n // len(producers) + (i < n % len(producers)))

    def due(self) -> list[Callable[[], None]]:
        """Deferred actions whose time has come (called by the Session's clock)."""
        now = time.monotonic()
        ready = [fn for at, fn in self.later if at <= now]
        self.later = [(at, fn) for at, fn in self.later if at > now]
        return ready

    def set_rate(self, run: "BrokerRun", multiplier: float) -> None:
        run.multiplier = multiplier
        for w in run.live("producer"):
            w.tell("multiplier", multiplier)

    def _end_peak(self, run: "BrokerRun") -> None:
        self.set_rate(run, 1.0)
        self.say("fault", "peak over: rate back to the profile", run.broker)

    def _crash_consumer(self, run: "BrokerRun") -> None:
        """SIGKILL one consumer mid-batch: it kills itself between receiving a batch and
        acking it, or is killed from here if no batch comes within a second."""
        consumers = run.live("consumer")
        if not consumers:
            raise LabError(f"{run.broker} has no consumer to crash")
        victim = consumers[0]
        victim.tell("crash")
        victim.stopping = True  # no longer counted as live; it will send no final report

        def make_sure() -> None:
            victim.kill()
            victim.finished = True

        def restart() -> None:
            worker = run.add_worker("consumer")
            worker.tell("start", run.t0_ns, run.multiplier)
            self.say("fault", f"consumer {victim.index} restarted as {worker.index}", run.broker)

        now = time.monotonic()
        self.later.append((now + 1.0, make_sure))
        self.later.append((now + 1.0 + CRASH_RESTART_DELAY, restart))

    def _background(self, broker: str, work: Callable[[], object]) -> None:
        def go() -> None:
            try:
                work()
                self.say("state", f"{broker} restarted", broker)
            except Exception as exc:  # the broker's failure is a finding for the event log
                self.say("error", f"restart failed: {exc}", broker)

        threading.Thread(target=go, name=f"lab-fault-{broker}", daemon=True).start()
