"""The requester worker (request-reply): a producer whose messages are requests, each
waiting for its reply on the requester's own reply address.

The schedule is the producer's, gated by a window: at most `requests.outstanding`
requests wait for replies at once (one in sync mode). A request that falls due while the
window is full waits for the next free slot, and its round trip counts from that moment,
when it could first be sent: in sync mode the round trip is the broker's and the
responder's, and throughput is requesters / round trip whatever the rate asks. When a
slot comes free the oldest request due goes; the others that fell due while the window
was full are held back (never sent, and counted). The requests' messages go through the
broker's ledger like any others; on top of it each request is replied or timed out
(lab/engine/requests.py).
"""

import time
from multiprocessing.connection import Connection

from lab import messages
from lab.brokers.contract import BrokerError, ProducerClient, ReplyReceiver
from lab.engine.producer import SEND_BATCH, ProducerWorker
from lab.engine.reporting import WorkerSpec, backoff, drop
from lab.metrics import record_all_us

# With the window full nothing is sent until a reply comes: wait on the reply address,
# waking this often to expire requests, obey commands and report.
FULL_WAIT_S = 0.05


class RequesterWorker(ProducerWorker):
    def __init__(self, spec: WorkerSpec, control: Connection, out: Connection) -> None:
        super().__init__(spec, control, out)
        requests = spec.run.recipe.requests
        self.window = requests.outstanding
        self.timeout_ns = int(requests.timeout * 1e9)
        self.waiting: dict[int, int] = {}  # seq -> round trip start (ns), in send order
        self.expired: set[int] = set()  # timed out, not (yet) answered late
        self.opened_ns = 0  # when the window last came free after being full
        self.receiver: ReplyReceiver | None = None
        self.receiver_failures = 0

    def _step(self, client: ProducerClient) -> None:
        woke_ns = time.monotonic_ns()
        self._expire(woke_ns)
        self._send(client, woke_ns)
        if len(self.waiting) >= self.window:
            wait = FULL_WAIT_S
        else:
            wait = self.pacer.pause_s(woke_ns, time.monotonic_ns())
        until = time.monotonic() + wait
        while True:
            self._heard(client.poll(0))
            # A slot came free: send at once (sync mode's throughput is the round trip,
            # not the round trip plus a pacing tick).
            if self._replies(until - time.monotonic()) or time.monotonic() >= until:
                return

    def _send(self, client: ProducerClient, now_ns: int) -> None:
        room = self.window - len(self.waiting)
        if room <= 0:
            return
        due = self.pacer.due(now_ns, SEND_BATCH)
        if len(due) > room:
            self.reporter.report.held_back += len(due) - room
            del due[room:]
        if not due:
            return
        # Those due while the window was full start when it came free: their round trip
        # is the broker's and the responder's, not the time they waited for a slot.
        opened = self.opened_ns
        batch = self._batch([max(d, opened) for d in due])
        client.send(batch)
        for m in batch:
            self.waiting[m.seq] = m.intended_ns

    def _expire(self, now_ns: int) -> None:
        """Requests older than the timeout stop waiting: timed out, and their slot free."""
        limit = now_ns - self.timeout_ns
        gone = []
        for seq, start in self.waiting.items():  # oldest first
            if start > limit:
                break
            gone.append(seq)
        if gone:
            self._free(gone, now_ns)
            self.expired.update(gone)
            self.reporter.report.timed_out += len(gone)

    def _free(self, seqs: list[int], now_ns: int) -> None:
        if len(self.waiting) >= self.window:
            self.opened_ns = now_ns
        for seq in seqs:
            del self.waiting[seq]

    def _replies(self, wait: float) -> bool:
        """Take the replies that came (waiting up to `wait` s); True if any freed a slot."""
        if self.receiver is None:
            try:
                self.receiver = self.adapter.replies(self.spec.index)
                self.receiver_failures = 0
            except (BrokerError, OSError) as exc:
                self.reporter.error(exc)
                self.receiver_failures += 1
                backoff(self.receiver_failures)
                return False
        try:
            replies = self.receiver.receive(max(0.0, wait))
        except (BrokerError, OSError) as exc:
            self.reporter.error(exc)
            self.receiver = drop(self.receiver)
            return False
        return self._answered(replies)

    def _answered(self, replies: list[bytes]) -> bool:
        now = time.monotonic_ns()
        r, me, tag, waiting = self.reporter.report, self.spec.index, self.tag, self.waiting
        answered, round_trips = [], []
        # A request sent in the warm-up (a consumer group still forming, a cold broker)
        # is replied to but not measured: its round trip would stretch the steady one.
        measured_from = self.pacer.t0_ns + int(self.spec.run.recipe.warmup * 1e9)
        for reply in replies:
            header = messages.decode(reply)
            if header is None or header.run_tag != tag or header.producer != me:
                r.foreign += 1
                continue
            start = waiting.get(header.seq)
            if start is not None:
                answered.append(header.seq)
                if start >= measured_from:
                    round_trips.append(now - start)
            elif header.seq in self.expired:
                self.expired.discard(header.seq)
                r.late_replies += 1
            else:
                r.duplicate_replies += 1
        if answered:
            self._free(answered, now)
        r.replied += len(answered)
        record_all_us(self.reporter.round_trips, round_trips)
        return bool(answered)

    def _wind_down(self) -> None:
        """The schedule is over: wait for the last replies, up to the timeout."""
        while self.waiting and self._obey():
            self._expire(time.monotonic_ns())
            self._replies(FULL_WAIT_S)
            self.reporter.maybe_send(time.monotonic())
        # Told to stop while some still waited: nobody waits for their replies any more.
        self.reporter.report.timed_out += len(self.waiting)
        self.waiting.clear()
        drop(self.receiver)
