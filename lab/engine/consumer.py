"""The consumer worker: receives, "processes" (sleeps the recipe's processing time),
reports, then acks; poison messages are retried, then dead-lettered."""

import os
import signal
import time
from array import array
from multiprocessing.connection import Connection

from lab import brokers as registry
from lab import messages
from lab.brokers.contract import (
    BrokerError,
    ConsumerClient,
    DeadLetterInfo,
    Delivery,
    ReplySender,
)
from lab.engine.control import Assign, Crash, Slow, Start, Stop
from lab.engine.reporting import Reporter, WorkerSpec, backoff, commands, count, drop
from lab.metrics import record_all_us
from lab.stream.stage import StreamStage

# The longest a long-polling receive waits for its first message. Longer waits cost fewer
# empty receives on an idle queue (SQS allows 20 s); a command (stop, crash) may wait for
# it, so it stays short.
LONG_POLL_WAIT = 1.0


class ConsumerWorker:
    """Receives, "processes" (sleeps the recipe's processing time), reports, then acks."""

    def __init__(self, spec: WorkerSpec, control: Connection, out: Connection) -> None:
        recipe = spec.run.recipe
        self.spec = spec
        self.control = control
        self.out = out
        self.adapter = registry.adapter_for(spec.run)
        self.reporter = Reporter(spec, out)
        self.tag = messages.run_tag(spec.run.run_id)
        self.processing = recipe.processing_time(spec.run.subscriber)
        self.slow = 1.0
        self.t0_ns: int | None = None  # the run's clock zero, once producers start
        self.max_attempts = recipe.max_attempts
        self.crash = False
        # Brokers without consumer groups: the partitions the engine gave this consumer,
        # and whether its client has yet to hear of them.
        self.partitions: tuple[int, ...] | None = None
        self.assign_now = False
        self.failures: dict[int, tuple[float, int]] = {}  # poison id -> (first failure, attempts)
        self.stage = StreamStage.for_run(spec.run, spec.index, self.reporter.post)
        # Keep one batch of simulated work near 100 ms, so commands and reports are not
        # held up behind a long sleep.
        self.batch_max = recipe.consumers.prefetch
        if self.processing > 0:
            self.batch_max = max(1, min(self.batch_max, int(0.1 / self.processing)))
        # Short polling: one receive that does not wait, every poll_interval; a full batch
        # is followed by the next receive at once, as a polling job drains a backlog.
        self.short_poll = recipe.consumers.poll == "short"
        self.poll_interval = recipe.consumers.poll_interval
        self.next_poll = 0.0
        # Request-reply: the responder answers each request before it acks it.
        self.responder = recipe.request_reply
        self.replier: ReplySender | None = None

    def run(self) -> None:
        client, failures = None, 0
        while self._obey():
            try:
                if client is None:
                    client = self.adapter.consumer(self.spec.index)
                    self.assign_now = self.partitions is not None
                    failures = 0
                if self.assign_now:
                    client.assign(list(self.partitions))
                    self.assign_now = False
                deliveries = self._receive(client)
                if deliveries:
                    self._process(deliveries, client)
            except (BrokerError, OSError) as exc:
                self.reporter.error(exc)
                client = drop(client)
                self.replier = drop(self.replier)
                failures += 1
                backoff(failures)
            self.reporter.maybe_send(time.monotonic())
            if self.stage:
                self.stage.beat(self.t0_ns)
        drop(client)
        drop(self.replier)
        if self.stage:
            self.stage.close(self.t0_ns)
        self.reporter.send("final")

    def _receive(self, client: ConsumerClient) -> list[Delivery] | None:
        """One receive call, counted; None: a short poll is not due yet."""
        if self.short_poll:
            now = time.monotonic()
            if now < self.next_poll:
                # Short naps, so commands and reports are not held up behind a long interval.
                time.sleep(min(self.next_poll - now, 0.1))
                return None
            deliveries = client.receive(self.batch_max, 0.0)
            full = len(deliveries) >= self.batch_max
            self.next_poll = now if full else now + self.poll_interval
        else:
            deliveries = client.receive(self.batch_max, LONG_POLL_WAIT)
        r = self.reporter.report
        r.receive_calls += 1
        r.empty_receives += not deliveries
        return deliveries

    def _obey(self) -> bool:
        for cmd in commands(self.control):
            match cmd:
                case Stop():
                    return False
                case Slow(factor):
                    self.slow = factor
                case Crash():
                    self.crash = True
                case Start(t0_ns, _):
                    self.t0_ns = t0_ns
                case Assign(partitions):
                    self.partitions = partitions
                    self.assign_now = True
        return True

    def _process(self, deliveries: list[Delivery], client: ConsumerClient) -> None:
        now = time.monotonic_ns()
        r, hist = self.reporter.report, self.reporter.hist
        r.received += len(deliveries)
        good: list[Delivery] = []
        retry: list[Delivery] = []
        give_up: list[tuple[Delivery, DeadLetterInfo]] = []
        seen, dead, latencies = array("Q"), array("Q"), []
        for d in deliveries:
            header = messages.decode(d.payload)
            if header is None or header.run_tag != self.tag:
                r.foreign += 1
                good.append(d)
                continue
            latencies.append(now - header.intended_ns)
            ident = messages.pack(header.producer, header.seq)
            if not header.poison:
                good.append(d)
                seen.append(ident)
                r.processed_bytes += len(d.payload)
                continue
            # A poison message fails processing every time: retried until max_attempts.
            info = self._failed(ident, d.attempts)
            if info.attempts >= self.max_attempts:
                give_up.append((d, info))
                dead.append(ident)
                self.failures.pop(ident, None)
            else:
                retry.append(d)
        record_all_us(hist, latencies)
        # Deliveries are reported on receipt, before any work or ack: a consumer killed
        # mid-batch gets these redelivered, and the redeliveries count as duplicates.
        if seen:
            self.reporter.post(("delivered", seen.tobytes()))
        if dead:
            self.reporter.post(("dead", dead.tobytes()))
        if self.stage and seen:
            # The features are updated before the crash point and the ack: see lab/stream/stage.py.
            self.stage.process(deliveries, self.t0_ns)
        if self.crash:
            # "Crash mid-batch": received and counted, neither processed nor acked.
            os.kill(os.getpid(), signal.SIGKILL)
        if self.processing > 0:
            time.sleep(len(deliveries) * self.processing * self.slow)
        r.processed += len(seen)
        r.rejected += len(retry)
        r.dead_lettered += len(give_up)
        if seen and self.t0_ns is not None:
            second = (time.monotonic_ns() - self.t0_ns) // 1_000_000_000
            count(r.processed_by_second, second, len(seen))
        if self.responder and seen:
            self._reply(good)
        if give_up:
            client.dead_letter(give_up)
        client.ack(good)
        if retry:
            client.reject(retry)

    def _reply(self, good: list[Delivery]) -> None:
        """Answer each request (this run's, not poison): its header, sent back."""
        answers = []
        for d in good:
            header = messages.decode(d.payload)
            if header is not None and header.run_tag == self.tag:
                answers.append((header.producer, d.payload[: messages.HEADER_SIZE]))
        if self.replier is None:
            self.replier = self.adapter.replier(self.spec.index)
        self.replier.send(answers)

    def _failed(self, ident: int, broker_attempts: int) -> DeadLetterInfo:
        """Count one more failed attempt. Brokers that count deliveries say how many;
        for the others this consumer counts the ones it saw."""
        now = time.time()
        first, seen = self.failures.get(ident, (now, 0))
        attempts = max(seen + 1, broker_attempts)
        self.failures[ident] = (first, attempts)
        return DeadLetterInfo("poison: processing failed", attempts, first, now)
