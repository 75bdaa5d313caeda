"""One thread per broker that owns its adapter's engine-side connections.

It brings the broker up if needed, provisions the run's queue, probes it twice a second
(lag, dead letters, retention drops, CPU and memory), and at the end takes the final
probe and tears the queue down. Owning the adapter from one thread means no client
object is ever shared between threads, and a probe that hangs on a paused broker delays
only this broker's numbers, never the Snapshot cadence.
"""

import threading
import time
from collections.abc import Callable

from lab.app import dlq
from lab.brokers.contract import Probe
from lab.engine.broker_run import BrokerRun
from lab.runtimes import Runtime

PROBE_INTERVAL = 0.5


class BrokerMonitor(threading.Thread):
    def __init__(
        self,
        run: BrokerRun,
        runtime: Runtime,
        lock: threading.Lock,
        on_event: Callable[[str, str, str | None], None],
        ensure_up: Callable[[str], None],
        elapsed: Callable[[], float],
    ) -> None:
        super().__init__(name=f"lab-monitor-{run.broker}", daemon=True)
        self.run_ = run
        self.runtime = runtime
        self.lock = lock
        self.on_event = on_event
        self.ensure_up = ensure_up
        self.elapsed = elapsed  # the session's clock
        self.ready = threading.Event()  # provisioned: workers may start
        self.restarted = threading.Event()  # the broker is back from a restart
        self.failed: str | None = None
        self.finish = threading.Event()  # the session wants the final probe and teardown
        self.final_probe: Probe | None = None
        self.done = threading.Event()

    def run(self) -> None:
        r = self.run_
        try:
            self.ensure_up(r.broker)
            r.adapter.provision()
            if r.stream:
                r.stream.provision(self.ensure_up)
        except Exception as exc:  # any failure here fails this broker only
            self.failed = f"{type(exc).__name__}: {exc}"
            self.ready.set()
            self.done.set()
            return
        self.ready.set()
        self._read_settings("start")
        last_state = None
        while not self.finish.wait(PROBE_INTERVAL):
            if self.restarted.is_set():
                self.restarted.clear()
                self._after_restart()
            state = self._observe()
            if r.stream:
                self._compare_stream()
            if state != last_state and last_state is not None:
                self.on_event("state", f"{r.broker} is {state}", r.broker)
            last_state = state
        self._read_settings("end")
        try:
            self.final_probe = r.adapter.probe(final=True)
        except Exception as exc:  # the broker may be down at the end
            self.on_event("error", f"final probe failed: {exc}", r.broker)
        if r.stream:
            r.stream.finish(lambda message: self.on_event("error", message, r.broker))
        dead = (self.final_probe.dead_letters or 0) if self.final_probe else 0
        try:
            r.adapter.teardown(keep_dead_letters=dead > 0)
            if dead:
                dlq.remember(
                    self.runtime.settings.state_dir,
                    r.spec.run_id,
                    r.broker,
                    r.recipe.to_dict(),
                    dead,
                )
                self.on_event(
                    "state",
                    f"kept {dead} dead letters: lab dlq {r.broker} --run {r.spec.run_id}",
                    r.broker,
                )
        except Exception as exc:  # the broker may be down at the end of a fault drill
            self.on_event("error", f"teardown failed: {exc}", r.broker)
        finally:
            r.adapter.close()
            self.done.set()

    def _after_restart(self) -> None:
        """A restart starts the broker from its configuration file: what the run set on
        the server is set again, and read back to show it held."""
        r = self.run_
        try:
            r.adapter.apply_durability()
        except Exception as exc:  # the broker may have died again
            self.on_event("error", f"durability not set again after the restart: {exc}", r.broker)
        now = self._read_settings("after restart")
        start = next((e["settings"] for e in r.settings_read if e["when"] == "start"), None)
        if now and start and now != start:
            changed = ", ".join(
                f"{k} {start.get(k)} -> {v}" for k, v in now.items() if start.get(k) != v
            )
            self.on_event("error", f"settings differ after the restart: {changed}", r.broker)

    def _read_settings(self, when: str) -> dict[str, str] | None:
        """The broker's own word on its durability settings, kept for the results."""
        r = self.run_
        try:
            found = r.adapter.read_settings()
        except Exception as exc:  # the broker may be down at the end of a drill
            self.on_event("error", f"settings not read back ({when}): {exc}", r.broker)
            return None
        if found:
            with self.lock:
                r.settings_read.append(
                    {"when": when, "t": round(self.elapsed(), 3), "settings": found}
                )
        return found

    def _observe(self) -> str:
        r = self.run_
        began = time.monotonic()
        try:
            probe = r.adapter.probe()
            state = "healthy"
        except Exception as exc:  # a failed probe is a finding, not a crash
            probe = None
            state = self._state_from_runtime()
            with self.lock:
                r.last_error = f"probe: {exc}"[:300]
        stats = self.runtime.stats(r.broker)
        with self.lock:
            h = r.health
            if h.said_at <= began:
                h.state = state
            state = h.state
            if probe is not None:
                h.probe = probe
                r.on_probe(probe)
                if probe.depth is not None:
                    h.max_lag = max(h.max_lag, probe.depth)
            h.cpu_percent = stats.cpu_percent if stats else None
            h.rss_bytes = stats.rss_bytes if stats else None
        return state

    def _compare_stream(self) -> None:
        """The windows the truth is known for and no consumer can change, compared with
        the store now (lab/stream/live.py): the store is read without the lock."""
        r = self.run_
        with self.lock:
            due = r.stream.due(r.workers, r.t0_ns)
        if due:
            read = r.stream.read_live(due)
            with self.lock:
                r.stream.compare_live(read)

    def _state_from_runtime(self) -> str:
        try:
            [status] = self.runtime.status([self.run_.broker], sample_seconds=0)
        except Exception:
            return "unreachable"
        state = str(status.state)
        return "unreachable" if state == "healthy" else state

    def stop_and_wait(self, timeout: float) -> None:
        self.finish.set()
        self.done.wait(timeout)


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True
