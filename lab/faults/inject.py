"""Carrying out a Fault during a run. The Session calls apply(); nothing here knows a UI.

Each action (lab/faults/actions.py) applies itself through this injector: process faults
through the runtime, network faults through the chaos proxy host, consumer and producer
faults through the broker's run. Actions that take seconds (a restart) run on a thread of
their own so the Session's clock keeps its cadence. The injector remembers which network
faults are in force on each broker, so every Snapshot (and so every UI) shows the truth.
"""

import threading
import time
from collections.abc import Callable

from lab.errors import LabError
from lab.faults import Fault
from lab.faults.actions import Target
from lab.faults.proxy_host import ProxyHost
from lab.runtimes import Runtime

Say = Callable[[str, str, str | None], None]  # (kind, message, broker)


class FaultInjector:
    def __init__(self, runtime: Runtime, say: Say, proxies: ProxyHost | None = None) -> None:
        self.runtime = runtime
        self.say = say
        self.proxies = proxies
        self._later: list[tuple[float, Callable[[], None]]] = []  # (monotonic due, action)
        self._network: dict[str, dict[str, dict[str, float]]] = {}  # broker -> toxics
        self.on_restarted: Callable[[str], None] | None = None  # the session's hook

    def apply(self, fault: Fault, run: Target) -> None:
        """Inject `fault` into one broker's run. Must be called with the session's lock."""
        self.say("fault", fault.describe().replace("all brokers", run.broker), run.broker)
        fault.kind.apply(fault, self, run)

    # --- what the actions use ---------------------------------------------------------

    def network(self, broker: str, action: str, params: dict[str, float]) -> None:
        if self.proxies is None or broker not in self.proxies.ports:
            raise LabError(
                f"network faults need the chaos proxy, which {broker} does not have in "
                "this run (recipe chaos_proxy = false, or an external broker the proxy "
                "cannot front)"
            )
        self.proxies.set(broker, action, **params)
        toxics = self._network.setdefault(broker, {})
        if action == "heal":
            toxics.clear()
        elif action != "reset":  # a reset is over as soon as it is done
            toxics[action] = params

    def network_faults(self, broker: str) -> dict[str, dict[str, float]]:
        """The network faults in force on the broker: action -> its arguments."""
        return {k: dict(v) for k, v in self._network.get(broker, {}).items()}

    def later(self, seconds: float, action: Callable[[], None]) -> None:
        self._later.append((time.monotonic() + seconds, action))

    def due(self) -> list[Callable[[], None]]:
        """Deferred actions whose time has come (called by the Session's clock)."""
        now = time.monotonic()
        ready = [fn for at, fn in self._later if at <= now]
        self._later = [(at, fn) for at, fn in self._later if at > now]
        return ready

    def end_peak(self, run: Target) -> None:
        run.set_rate(1.0)
        self.say("fault", "peak over: rate back to the profile", run.broker)

    def restart(self, broker: str) -> None:
        def go() -> None:
            try:
                self.runtime.restart(broker)
                self.say("state", f"{broker} restarted", broker)
                if self.on_restarted is not None:
                    self.on_restarted(broker)
            except Exception as exc:  # the broker's failure is a finding for the event log
                self.say("error", f"restart failed: {exc}", broker)

        threading.Thread(target=go, name=f"lab-fault-{broker}", daemon=True).start()
