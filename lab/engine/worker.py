"""Producer and consumer worker processes: the only place messages are made, timed and seen.

A worker talks to the engine over two pipes. It reads commands from `control` and
writes to `out`, synchronously (a pipe write survives the worker being SIGKILLed a
moment later, a multiprocessing.Queue's background thread does not):

    ("ready", Report)        producers, once connected; then they wait for
                             control.Start: the run's clock zero
    ("report", Report)       every REPORT_INTERVAL: counts and latency histogram deltas
    ("delivered", bytes)     consumers, per batch, on receipt (before work and ack): the
                             packed (producer << 40 | seq) of each message, so a consumer
                             killed after its ack still has its deliveries counted
    ("dead", bytes)          consumers, likewise, for messages they dead-letter
    ("final", Report)        the last report, then the worker exits

Per message a worker does only what the measurement needs: encode or decode a 25-byte
header, one histogram record, one bitmap bit.
"""

import contextlib
import os
import random
import signal
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from lab import brokers as registry
from lab import messages
from lab.brokers.contract import (
    Ack,
    BrokerError,
    ConsumerClient,
    DeadLetterInfo,
    Delivery,
    Outgoing,
    ProducerClient,
    RunSpec,
)
from lab.engine.control import Assign, Burst, Command, Crash, SetMultiplier, Slow, Start, Stop
from lab.engine.pacing import Pacer, message_sizes, rate_function
from lab.ledger import Export, SeqCollector
from lab.metrics import new_histogram, record_us

REPORT_INTERVAL = 0.25
SEND_BATCH = 500  # most messages handed to a client at once
RECONNECT_BACKOFF = (0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class WorkerSpec:
    run: RunSpec
    role: str  # "producer" | "consumer"
    index: int
    share: float = 1.0  # producers: this one's fraction of the recipe's rate


@dataclass
class Report:
    role: str
    index: int
    sent: int = 0
    sent_bytes: int = 0
    acked: int = 0
    acked_bytes: int = 0
    failed: int = 0
    backlog: int = 0
    acked_seqs: Export = field(default_factory=dict)
    poison_acked: int = 0
    # (partition, position, producer << 40 | seq) of acked messages, when the run has
    # retention: how the engine names what a position-based retention deleted.
    positions: bytes = b""
    # Counts per whole second of the run clock (t0): the rate profile's real shape.
    sent_by_second: dict[int, int] = field(default_factory=dict)
    acked_by_second: dict[int, int] = field(default_factory=dict)
    processed_by_second: dict[int, int] = field(default_factory=dict)
    publish_hist: bytes = b""
    received: int = 0
    processed: int = 0
    processed_bytes: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    foreign: int = 0  # messages that are not this run's (acked and ignored)
    e2e_hist: bytes = b""
    errors: int = 0
    error_text: str = ""


class _Reporter:
    def __init__(self, spec: WorkerSpec, out: Connection) -> None:
        self.spec = spec
        self.out = out
        self.report = Report(spec.role, spec.index)
        self.hist = new_histogram()
        self.seqs = SeqCollector()
        self.due = time.monotonic() + REPORT_INTERVAL

    def error(self, exc: BaseException) -> None:
        self.report.errors += 1
        self.report.error_text = f"{type(exc).__name__}: {exc}"[:300]

    def maybe_send(self, now: float) -> None:
        if now >= self.due:
            self.send("report")
            self.due = now + REPORT_INTERVAL

    def send(self, kind: str) -> None:
        report = self.report
        if self.hist.get_total_count():
            encoded = self.hist.encode()
            if report.role == "producer":
                report.publish_hist = encoded
            else:
                report.e2e_hist = encoded
            self.hist.reset()
        if self.seqs:
            report.acked_seqs = self.seqs.export()
            self.seqs = SeqCollector()
        self.out.send((kind, report))
        self.report = Report(report.role, report.index)


def _commands(control: Connection) -> list[Command]:
    """Commands waiting on the control pipe; Stop when the engine has gone away."""
    out = []
    try:
        while control.poll():
            out.append(control.recv())
    except (EOFError, OSError):
        out.append(Stop())
    return out


class ProducerWorker:
    """Sends on the open-loop schedule, reconnects after broker errors, reports acks."""

    def __init__(self, spec: WorkerSpec, control: Connection, out: Connection) -> None:
        recipe = spec.run.recipe
        self.spec = spec
        self.control = control
        self.adapter = registry.adapter_for(spec.run)
        self.reporter = _Reporter(spec, out)
        self.rate_at = rate_function(recipe.rate, recipe.duration)
        self.pacer: Pacer | None = None  # made when the engine says when the run starts
        m = recipe.message
        self.size_of = message_sizes(m.distribution, m.size, m.min, m.max, seed=spec.index)
        self.rng = random.Random(f"{spec.run.run_id}/{spec.index}")
        self.poison_share = recipe.poison_share
        self.tag = messages.run_tag(spec.run.run_id)
        self.seq = 0
        self.unacked: dict[int, int] = {}  # seq -> payload bytes, until acked or failed
        self.poison_unacked: set[int] = set()
        retention = recipe.retention
        self.track_positions = bool(
            retention.max_age or retention.max_messages or retention.max_bytes
        )
        self.positions = array("q")

    def run(self) -> None:
        client = self._connect()
        if client is None:
            self.reporter.send("final")
            return
        failures = 0
        while self._obey() and not self.pacer.finished:
            try:
                if client is None:
                    client = self.adapter.producer(self.spec.index)
                    failures = 0
                self._step(client)
            except (BrokerError, OSError) as exc:
                self.reporter.error(exc)
                client = _drop(client)
                failures += 1
                _backoff(failures)
            self.reporter.report.backlog = self.pacer.behind(time.monotonic_ns())
            self.reporter.maybe_send(time.monotonic())
        if client is not None:
            try:
                self._record(client.flush(10.0))
            except (BrokerError, OSError) as exc:
                self.reporter.error(exc)
            _drop(client)
        self.reporter.report.failed += len(self.unacked)  # sent, never acknowledged
        self.reporter.send("final")

    def _connect(self) -> ProducerClient | None:
        """Connect, say "ready", and wait for the engine's start time (every producer of a
        run starts on the same clock, after all of them are connected)."""
        client, failures = None, 0
        while client is None:
            try:
                client = self.adapter.producer(self.spec.index)
            except (BrokerError, OSError) as exc:
                self.reporter.error(exc)
                failures += 1
                _backoff(failures)
                if any(isinstance(cmd, Stop) for cmd in _commands(self.control)):
                    return None
        self.reporter.send("ready")
        while True:
            try:
                cmd = self.control.recv()
            except (EOFError, OSError):
                cmd = Stop()
            if isinstance(cmd, Stop):
                _drop(client)
                return None
            if isinstance(cmd, Start):
                recipe = self.spec.run.recipe
                self.pacer = Pacer(self.rate_at, cmd.t0_ns, recipe.duration, self.spec.share)
                self.pacer.multiplier = cmd.multiplier
                return client

    def _obey(self) -> bool:
        """Apply waiting commands; False when told to stop."""
        for cmd in _commands(self.control):
            match cmd:
                case Stop():
                    return False
                case SetMultiplier(multiplier):
                    self.pacer.multiplier = multiplier
                case Burst(count):
                    self.pacer.burst(count, time.monotonic_ns())
        return True

    def _step(self, client: ProducerClient) -> None:
        now_ns = time.monotonic_ns()
        due = self.pacer.due(now_ns, SEND_BATCH)
        if due:
            client.send(self._batch(due))
        # A full batch means the schedule is behind: send again at once.
        wait = 0.0 if len(due) == SEND_BATCH else min(self.pacer.wait_s(now_ns), 0.05)
        self._record(client.poll(wait))

    def _batch(self, due: list[int]) -> list[Outgoing]:
        batch, me, r = [], self.spec.index, self.reporter.report
        for intended in due:
            poison = self.poison_share > 0 and self.rng.random() < self.poison_share
            if poison:
                self.poison_unacked.add(self.seq)
            payload = messages.encode(self.tag, me, self.seq, intended, poison, self.size_of())
            batch.append(Outgoing(self.seq, intended, payload))
            self.unacked[self.seq] = len(payload)
            r.sent_bytes += len(payload)
            self.seq += 1
        r.sent += len(batch)
        _count(r.sent_by_second, self.pacer.second(time.monotonic_ns()), len(batch))
        return batch

    def _record(self, acks: list[Ack]) -> None:
        if not acks:
            return
        now = time.monotonic_ns()
        r, hist, seqs, me = (
            self.reporter.report,
            self.reporter.hist,
            self.reporter.seqs,
            self.spec.index,
        )
        acked_before = r.acked
        for ack in acks:
            nbytes = self.unacked.pop(ack.seq, 0)
            poison = ack.seq in self.poison_unacked
            if poison:
                self.poison_unacked.discard(ack.seq)
            if ack.ok:
                r.acked += 1
                r.acked_bytes += nbytes
                r.poison_acked += poison
                record_us(hist, now - ack.intended_ns)
                seqs.add(me, ack.seq)
                if self.track_positions and ack.position >= 0:
                    self.positions.extend((ack.partition, ack.position, messages.pack(me, ack.seq)))
            else:
                r.failed += 1
                if ack.error:
                    r.error_text = ack.error[:300]
        if r.acked > acked_before:
            _count(r.acked_by_second, self.pacer.second(now), r.acked - acked_before)
        if self.positions:
            r.positions += self.positions.tobytes()
            self.positions = array("q")


class ConsumerWorker:
    """Receives, "processes" (sleeps the recipe's processing time), reports, then acks."""

    def __init__(self, spec: WorkerSpec, control: Connection, out: Connection) -> None:
        recipe = spec.run.recipe
        self.spec = spec
        self.control = control
        self.out = out
        self.adapter = registry.adapter_for(spec.run)
        self.reporter = _Reporter(spec, out)
        self.tag = messages.run_tag(spec.run.run_id)
        self.processing = recipe.consumers.processing_time
        self.slow = 1.0
        self.t0_ns: int | None = None  # the run's clock zero, once producers start
        self.max_attempts = recipe.max_attempts
        self.crash = False
        # Brokers without consumer groups: the partitions the engine gave this consumer,
        # and whether its client has yet to hear of them.
        self.partitions: tuple[int, ...] | None = None
        self.assign_now = False
        self.failures: dict[int, tuple[float, int]] = {}  # poison id -> (first failure, attempts)
        # Keep one batch of simulated work near 100 ms, so commands and reports are not
        # held up behind a long sleep.
        self.batch_max = recipe.consumers.prefetch
        if self.processing > 0:
            self.batch_max = max(1, min(self.batch_max, int(0.1 / self.processing)))

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
                deliveries = client.receive(self.batch_max, 0.1)
                if deliveries:
                    self._process(deliveries, client)
            except (BrokerError, OSError) as exc:
                self.reporter.error(exc)
                client = _drop(client)
                failures += 1
                _backoff(failures)
            self.reporter.maybe_send(time.monotonic())
        _drop(client)
        self.reporter.send("final")

    def _obey(self) -> bool:
        for cmd in _commands(self.control):
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
        seen, dead = array("Q"), array("Q")
        for d in deliveries:
            header = messages.decode(d.payload)
            if header is None or header.run_tag != self.tag:
                r.foreign += 1
                good.append(d)
                continue
            record_us(hist, now - header.intended_ns)
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
        # Deliveries are reported on receipt, before any work or ack: a consumer killed
        # mid-batch gets these redelivered, and the redeliveries count as duplicates.
        if seen:
            self.out.send(("delivered", seen.tobytes()))
        if dead:
            self.out.send(("dead", dead.tobytes()))
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
            _count(r.processed_by_second, second, len(seen))
        if give_up:
            client.dead_letter(give_up)
        client.ack(good)
        if retry:
            client.reject(retry)

    def _failed(self, ident: int, broker_attempts: int) -> DeadLetterInfo:
        """Count one more failed attempt. Brokers that count deliveries say how many;
        for the others this consumer counts the ones it saw."""
        now = time.time()
        first, seen = self.failures.get(ident, (now, 0))
        attempts = max(seen + 1, broker_attempts)
        self.failures[ident] = (first, attempts)
        return DeadLetterInfo("poison: processing failed", attempts, first, now)


def _count(buckets: dict[int, int], second: int, n: int) -> None:
    buckets[second] = buckets.get(second, 0) + n


def _backoff(failures: int) -> None:
    time.sleep(RECONNECT_BACKOFF[min(failures, len(RECONNECT_BACKOFF)) - 1])


def _drop(client: ProducerClient | ConsumerClient | None) -> None:
    """Close a client that is being thrown away; whatever it says about that no longer matters."""
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()


def worker_main(spec: WorkerSpec, control: Connection, out: Connection) -> None:
    """Entry point of a worker process."""
    # Ctrl-C goes to the whole foreground process group; the engine decides when a
    # worker stops, so that it can drain and report first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        worker = ProducerWorker if spec.role == "producer" else ConsumerWorker
        worker(spec, control, out).run()
    except Exception as exc:
        # A bug, not a broker error: tell the engine, which shows it, then fail loudly.
        with contextlib.suppress(OSError):
            out.send(("crashed", f"{spec.role} {spec.index}: {type(exc).__name__}: {exc}"))
        raise
    finally:
        out.close()
