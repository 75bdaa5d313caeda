"""Every fault the lab can inject, one small class each, in one registry (ACTIONS).

The CLI's --fault, a recipe's [[faults]], the TUI's keys, its confirmations and its help
all read this registry; the engine applies an action through FaultInjector (inject.py),
which gives it what it needs: the runtime, the chaos proxies and the broker's run.
"""

from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from lab.faults import Fault
    from lab.faults.inject import FaultInjector


class Scope(StrEnum):
    PROCESS = "broker process"  # through the runtime: signals, restarts
    NETWORK = "network"  # through the broker's chaos proxy
    CONSUMERS = "consumers"
    PRODUCERS = "producers"


CRASH_GRACE = 1.0  # a consumer told to crash that gets no batch is killed after this long
CRASH_RESTART_DELAY = 1.0  # then a supervisor brings a consumer back after this long


class Target(Protocol):
    """One broker's part of a run, as faults see it (lab/engine/broker_run.py)."""

    broker: str

    def crash_consumer(self) -> int:
        """Tell one consumer to crash mid-batch; returns its index."""

    def make_sure_crashed(self, index: int) -> None: ...

    def add_consumer(self) -> int:
        """Start one more consumer; returns its index."""

    def remove_consumer(self) -> None: ...
    def set_state(self, state: str) -> None:
        """The broker's state as a fault left it, until the monitor's next look."""

    def slow_consumers(self, factor: float) -> None: ...
    def set_rate(self, multiplier: float) -> None: ...
    def burst(self, count: int) -> None: ...


class FaultAction:
    name: ClassVar[str]
    summary: ClassVar[str]  # what it does, for --help, the TUI's help and errors
    params: ClassVar[dict[str, float]] = {}  # the arguments it takes, with their defaults
    durations: ClassVar[tuple[str, ...]] = ()  # those of params that are durations (seconds)
    scope: ClassVar[Scope]
    destructive: ClassVar[bool] = False  # the TUI asks first

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        raise NotImplementedError


class Kill(FaultAction):
    name, scope, destructive = "kill", Scope.PROCESS, True
    summary = "SIGKILL the broker: no flush, no goodbye"

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        injector.runtime.kill(run.broker)


class Pause(FaultAction):
    name, scope = "pause", Scope.PROCESS
    summary = "SIGSTOP the broker: connections stay open and hang"

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        injector.runtime.pause(run.broker)
        # A probe of a stopped process hangs until its client gives up (10 s for some):
        # say paused now, so a short pause shows, and a second key press resumes.
        run.set_state("paused")


class Resume(FaultAction):
    name, scope = "resume", Scope.PROCESS
    summary = "SIGCONT a paused broker"

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        injector.runtime.resume(run.broker)


class Restart(FaultAction):
    name, scope, destructive = "restart", Scope.PROCESS, True
    summary = "stop the broker gracefully and start it again"

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        injector.restart(run.broker)  # seconds of work: on a thread of its own


class NetworkFault(FaultAction):
    """Sets a toxic of the broker's chaos proxy; `heal` removes them all."""

    scope = Scope.NETWORK

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        injector.network(run.broker, self.name, {k: fault.arg(k) for k in self.params})


class Latency(NetworkFault):
    name = "latency"
    summary = "add network latency (ms) with jitter (ms) between clients and broker"
    params = {"ms": 100.0, "jitter": 0.0}


class Bandwidth(NetworkFault):
    name = "bandwidth"
    summary = "cap the network bandwidth to kbps kilobytes per second"
    params = {"kbps": 1000.0}


class Blackhole(NetworkFault):
    name, destructive = "blackhole", True
    summary = "network partition: connections hang, nothing gets through"


class Reset(NetworkFault):
    name = "reset"
    summary = "reset every client connection (TCP RST)"


class Heal(NetworkFault):
    name = "heal"
    summary = "remove every network fault"


class CrashConsumer(FaultAction):
    name, scope, destructive = "crash-consumer", Scope.CONSUMERS, True
    summary = "SIGKILL one consumer mid-batch: its unacked messages come back"

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        victim = run.crash_consumer()

        def restart() -> None:
            again = run.add_consumer()
            injector.say("fault", f"consumer {victim} restarted as {again}", run.broker)

        injector.later(CRASH_GRACE, lambda: run.make_sure_crashed(victim))
        injector.later(CRASH_GRACE + CRASH_RESTART_DELAY, restart)


class SlowConsumers(FaultAction):
    name, scope = "slow-consumers", Scope.CONSUMERS
    summary = "multiply every consumer's processing time by factor"
    params = {"factor": 10.0}

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        run.slow_consumers(fault.arg("factor"))


class AddConsumer(FaultAction):
    name, scope = "add-consumer", Scope.CONSUMERS
    summary = "start one more consumer"

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        run.add_consumer()


class RemoveConsumer(FaultAction):
    name, scope = "remove-consumer", Scope.CONSUMERS
    summary = "stop one consumer gracefully"

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        run.remove_consumer()


class Peak(FaultAction):
    name, scope = "peak", Scope.PRODUCERS
    summary = "multiply the producers' rate by x for `for` seconds"
    params = {"x": 10.0, "for": 10.0}
    durations = ("for",)

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        run.set_rate(fault.arg("x"))
        injector.later(fault.arg("for"), lambda: injector.end_peak(run))


class Rate(FaultAction):
    name, scope = "rate", Scope.PRODUCERS
    summary = "multiply the producers' rate by x from now on (x=1: back to the profile)"
    params = {"x": 1.0}

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        run.set_rate(fault.arg("x"))


class BurstOf(FaultAction):
    name, scope = "burst", Scope.PRODUCERS
    summary = "send n messages at once"
    params = {"n": 1000.0}

    def apply(self, fault: "Fault", injector: "FaultInjector", run: Target) -> None:
        run.burst(int(fault.arg("n")))


ACTIONS: dict[str, FaultAction] = {
    cls.name: cls()
    for cls in (
        Kill,
        Pause,
        Resume,
        Restart,
        Latency,
        Bandwidth,
        Blackhole,
        Reset,
        Heal,
        CrashConsumer,
        SlowConsumers,
        AddConsumer,
        RemoveConsumer,
        Peak,
        Rate,
        BurstOf,
    )
}
NETWORK_ACTIONS = tuple(n for n, a in ACTIONS.items() if a.scope is Scope.NETWORK)
