"""The producer worker: sends on the open-loop schedule, reconnects after broker errors,
reports acks (lab/engine/worker.py says what it tells the engine)."""

import random
import time
from array import array
from multiprocessing.connection import Connection

from lab import brokers as registry
from lab import messages
from lab.brokers.contract import Ack, BrokerError, Outgoing, ProducerClient
from lab.engine.control import Burst, SetMultiplier, Start, Stop
from lab.engine.pacing import Pacer, message_sizes, rate_function
from lab.engine.reporting import (
    EngineGone,
    Reporter,
    WorkerSpec,
    backoff,
    commands,
    count,
    drop,
)
from lab.metrics import record_all_us
from lab.stream.acks import AckTimes

SEND_BATCH = 500  # most messages handed to a client at once
MIN_WAIT_S = 0.0001  # shorter than a sleep's own overhead: not worth waiting


class ProducerWorker:
    """Sends on the open-loop schedule, reconnects after broker errors, reports acks."""

    def __init__(self, spec: WorkerSpec, control: Connection, out: Connection) -> None:
        recipe = spec.run.recipe
        self.spec = spec
        self.control = control
        self.adapter = registry.adapter_for(spec.run)
        self.reporter = Reporter(spec, out)
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
        # Fire-and-forget: a message counts as acked when it is handed to the client;
        # whatever the client hears back is ignored (lab/recipes/model.py, Recipe.forget).
        self.forget = recipe.forget
        self.ack_times = AckTimes.for_run(spec.run, self.reporter.post)  # [stream] windows

    def run(self) -> None:
        client = self._connect()
        if client is None:
            self.reporter.send("final")
            return
        failures = 0
        if self.ack_times:
            self.ack_times.next_due = self.pacer.next_due
        while self._obey() and not self.pacer.finished:
            try:
                if client is None:
                    client = self.adapter.producer(self.spec.index)
                    failures = 0
                self._step(client)
            except (BrokerError, OSError) as exc:
                self.reporter.error(exc)
                client = drop(client)
                failures += 1
                backoff(failures)
            self.reporter.report.backlog = self.pacer.behind(time.monotonic_ns())
            self.reporter.maybe_send(time.monotonic())
            if self.ack_times:
                self.ack_times.tick()
        if client is not None:
            try:
                self._heard(client.flush(10.0))
            except (BrokerError, OSError) as exc:
                self.reporter.error(exc)
            drop(client)
        self._wind_down()
        self.reporter.report.failed += len(self.unacked)  # sent, never acknowledged
        if self.ack_times:
            self.ack_times.flush()
        self.reporter.send("final")

    def _wind_down(self) -> None:
        """After the last send and its acks: a requester waits for its replies here."""

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
                backoff(failures)
                if any(isinstance(cmd, Stop) for cmd in commands(self.control)):
                    return None
        self.reporter.send("ready")
        while True:
            try:
                cmd = self.control.recv()
            except (EOFError, OSError):
                raise EngineGone from None
            if isinstance(cmd, Stop):
                drop(client)
                return None
            if isinstance(cmd, Start):
                recipe = self.spec.run.recipe
                self.pacer = Pacer(self.rate_at, cmd.t0_ns, recipe.duration, self.spec.share)
                self.pacer.multiplier = cmd.multiplier
                return client

    def _obey(self) -> bool:
        """Apply waiting commands; False when told to stop."""
        for cmd in commands(self.control):
            match cmd:
                case Stop():
                    return False
                case SetMultiplier(multiplier):
                    self.pacer.multiplier = multiplier
                case Burst(count):
                    self.pacer.burst(count, time.monotonic_ns())
        return True

    def _step(self, client: ProducerClient) -> None:
        woke_ns = time.monotonic_ns()
        due = self.pacer.due(woke_ns, SEND_BATCH)
        if due:
            batch = self._batch(due)
            client.send(batch)
            if self.forget:
                self._record([Ack(m.seq, m.intended_ns, True) for m in batch])
        # A full batch means the schedule is behind: send again at once.
        wait = 0.0 if len(due) == SEND_BATCH else self.pacer.pause_s(woke_ns, time.monotonic_ns())
        # poll() returns early with the first acks (synchronous clients have them at once):
        # the wait goes on until its end, or the next turn would send one message or two.
        until = time.monotonic() + wait
        while True:
            self._heard(client.poll(wait))
            wait = until - time.monotonic()
            if wait < MIN_WAIT_S:
                return

    def _heard(self, acks: list[Ack]) -> None:
        """What the broker acknowledged; a fire-and-forget producer does not listen."""
        if not self.forget:
            self._record(acks)

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
        if self.ack_times:
            self.ack_times.sent(batch)
        count(r.sent_by_second, self.pacer.second(time.monotonic_ns()), len(batch))
        return batch

    def _record(self, acks: list[Ack]) -> None:
        if not acks:
            return
        now = time.monotonic_ns()
        r, seqs, me = self.reporter.report, self.reporter.seqs, self.spec.index
        unacked, poison_unacked, add = self.unacked, self.poison_unacked, seqs.add
        acked_before, acked_bytes = r.acked, 0
        if self.ack_times:
            self.ack_times.add(acks)
        latencies = []
        for ack in acks:
            nbytes = unacked.pop(ack.seq, 0)
            poison = bool(poison_unacked) and ack.seq in poison_unacked
            if poison:
                poison_unacked.discard(ack.seq)
            if ack.ok:
                acked_bytes += nbytes
                r.poison_acked += poison
                latencies.append(now - ack.intended_ns)
                add(me, ack.seq)
                if self.track_positions and ack.position >= 0:
                    self.positions.extend((ack.partition, ack.position, messages.pack(me, ack.seq)))
            else:
                r.failed += 1
                if ack.error:
                    r.error_text = ack.error[:300]
        # One histogram update per batch: per message it was a tenth of the producer's CPU.
        record_all_us(self.reporter.hist, latencies)
        r.acked += len(latencies)
        r.acked_bytes += acked_bytes
        if r.acked > acked_before:
            count(r.acked_by_second, self.pacer.second(now), r.acked - acked_before)
        if self.positions:
            r.positions += self.positions.tobytes()
            self.positions = array("q")
