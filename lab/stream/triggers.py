"""What a trigger does when a window crosses its threshold: publish an alert to the run's
alerts topic on the same broker, or run the user's command, at most `rate_limit` a second.

The alerts topic is the run's queue under a second name (lab-<run id>-alerts), made and
removed by the broker's own adapter, so every broker gets one in its own terms (a Kafka
topic, a RabbitMQ queue, a Redis stream, a table, an SQS queue, ...). Nobody in the lab
consumes it: it is where the team's notifier or retraining job would listen. An alert
failing to send is counted, never raised: the window has fired either way, and a broker
error here must not turn into a redelivery of the batch that fired it.
"""

import contextlib
import json
import os
import subprocess
import time
from dataclasses import replace

from lab import brokers as registry
from lab.brokers.contract import BrokerError, Outgoing, ProducerClient, RunSpec
from lab.recipes.model import Triggers

ALERTS_SUFFIX = "-alerts"
COMMAND_WAIT = 5.0  # s a consumer leaving waits for its commands before killing them


def alerts_spec(spec: RunSpec) -> RunSpec:
    """The run's alerts topic: same broker, same endpoint, a second queue name."""
    return replace(spec, run_id=spec.run_id + ALERTS_SUFFIX)


class RateLimit:
    """A token bucket: `rate` actions a second, bursts of up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class TriggerActions:
    """One consumer's trigger actions. `latencies` collects, per alert acked or command
    started, nanoseconds from the event that crossed the threshold."""

    def __init__(self, spec: RunSpec, cfg: Triggers, index: int) -> None:
        self.spec = spec
        self.cfg = cfg
        self.index = index
        self.limit = RateLimit(cfg.rate_limit)
        self.client: ProducerClient | None = None
        self.seq = 0
        self.sent = self.suppressed = self.failed = 0
        self.last_error = ""
        self.latencies: list[int] = []
        self.commands: list[subprocess.Popen] = []

    def fire(self, key: int, start_ms: int, event_ns: int) -> None:
        """Window `start_ms` of `key` crossed the threshold with the event of `event_ns`."""
        if not self.limit.take():
            self.suppressed += 1
            return
        if self.cfg.action == "command":
            self._run_command(key, start_ms)
            self.latencies.append(time.monotonic_ns() - event_ns)
        else:
            self._alert(key, start_ms, event_ns)

    def _alert(self, key: int, start_ms: int, event_ns: int) -> None:
        alert = {
            "run_id": self.spec.run_id,
            "broker": self.spec.broker,
            "subscriber": self.spec.subscriber,
            "key": key,
            "window_start_s": start_ms / 1000,
            "statistic": self.cfg.statistic,
            "threshold": self.cfg.threshold,
        }
        try:
            if self.client is None:
                self.client = registry.adapter_for(alerts_spec(self.spec)).producer(self.index)
            self.client.send([Outgoing(self.seq, event_ns, json.dumps(alert).encode())])
            self.seq += 1
            self.sent += 1
            self.poll(0)
        except (BrokerError, OSError) as exc:
            self._failed(exc)

    def poll(self, timeout: float) -> None:
        if self.client is None:
            return
        try:
            acks = self.client.poll(timeout)
        except (BrokerError, OSError) as exc:
            self._failed(exc)
            return
        now = time.monotonic_ns()
        for ack in acks:
            if ack.ok:
                self.latencies.append(now - ack.intended_ns)
            else:
                self.failed += 1
                self.last_error = ack.error or "alert not acknowledged"

    def _run_command(self, key: int, start_ms: int) -> None:
        self.commands = [p for p in self.commands if p.poll() is None]
        env = {
            **os.environ,
            "LAB_ALERT_KEY": str(key),
            "LAB_ALERT_WINDOW_START_S": f"{start_ms / 1000:g}",
            "LAB_ALERT_STATISTIC": self.cfg.statistic,
            "LAB_ALERT_THRESHOLD": f"{self.cfg.threshold:g}",
            "LAB_ALERT_BROKER": self.spec.broker,
            "LAB_ALERT_SUBSCRIBER": self.spec.subscriber,
            "LAB_RUN_ID": self.spec.run_id,
        }
        try:
            self.commands.append(
                subprocess.Popen(  # the user's own command line, from the recipe
                    self.cfg.command,
                    shell=True,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            self.sent += 1
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.failed += 1
        self.last_error = f"trigger {self.cfg.action}: {type(exc).__name__}: {exc}"[:300]

    def close(self) -> None:
        if self.client is not None:
            try:
                acks = self.client.flush(5.0)
                now = time.monotonic_ns()
                self.latencies += [now - a.intended_ns for a in acks if a.ok]
            except (BrokerError, OSError) as exc:
                self._failed(exc)
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
        deadline = time.monotonic() + COMMAND_WAIT
        for proc in self.commands:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.commands = []
