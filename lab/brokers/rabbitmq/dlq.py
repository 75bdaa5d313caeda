"""RabbitMQ retention and dead letters, for lab/brokers/rabbitmq.py.

Retention: queue arguments (x-max-length, x-max-length-bytes, x-message-ttl, overflow
drop-head) whose victims RabbitMQ dead-letters, reason and all, into `<queue>.dropped`;
the probe drains that queue and names each message from its lab header.

Dead letters: the consumer publishes a message that failed `max_attempts` times to
`<queue>.dlq` with x-lab-* headers (reason, attempts, failure times) and a message id,
waits for the publisher confirm, and only then acks the original. Browsing reads the
DLQ without acking and lets the broker requeue; redrive republishes and acks.

Nothing here imports amqp.py at run time: its functions take a Session from there.
"""

import time
import uuid
from array import array
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import pika
from pika import frame
from pika import spec as amqp
from pika.channel import Channel
from pika.exceptions import AMQPError

from lab import messages
from lab.brokers.contract import BrokerError, DeadLetter, DeadLetterInfo, RunSpec, dead_letter_of
from lab.recipes.model import Recipe

if TYPE_CHECKING:
    from lab.brokers.rabbitmq.amqp import Session

CALL_TIMEOUT = 10.0  # one AMQP round trip
CONFIRM_TIMEOUT = 30.0  # a broker under a memory alarm holds confirms back for a while
FINAL_TIMEOUT = 30.0
DRAIN_PREFETCH = 2000  # `.dropped` messages in flight to the probe at a time
DRAIN_LIMIT = 6000  # taken per live probe (twice a second); the final probe takes all
RECENT_IDS = 50_000  # drops remembered to tell one seen again from a new one
REDRIVE_PREFETCH = 500
BROWSE_PREFETCH_MAX = 65535  # AMQP's prefetch count is 16 bits

REASON = "x-lab-reason"
ATTEMPTS = "x-lab-attempts"  # also what classic queues count retries in (rabbitmq.py)
FIRST_FAILURE = "x-lab-first-failure"
LAST_FAILURE = "x-lab-last-failure"


def dropped_queue(spec: RunSpec) -> str:
    return f"{spec.queue}.dropped"


def has_retention(recipe: Recipe) -> bool:
    r = recipe.retention
    return bool(r.max_age or r.max_messages or r.max_bytes)


def _limits(recipe: Recipe) -> dict[str, int]:
    r = recipe.retention
    limits = {}
    if r.max_messages:
        limits["x-max-length"] = r.max_messages
    if r.max_bytes:
        limits["x-max-length-bytes"] = r.max_bytes
    if r.max_age:
        limits["x-message-ttl"] = max(1, round(r.max_age * 1000))
    return limits


def queue_arguments(spec: RunSpec, queue_type: str) -> dict[str, object]:
    """The main queue's arguments: its type and, with a retention limit, the limit and
    where RabbitMQ dead-letters what the limit deletes."""
    args: dict[str, object] = {"x-queue-type": queue_type}
    if has_retention(spec.recipe):
        args |= _limits(spec.recipe)
        # drop-head is also the default; said here so the settings need not rely on it.
        args["x-overflow"] = "drop-head"
        args["x-dead-letter-exchange"] = ""
        args["x-dead-letter-routing-key"] = dropped_queue(spec)
    return args


def settings(spec: RunSpec, quorum: bool) -> dict[str, str]:
    """The retention and dead-letter part of the adapter's settings."""
    recipe = spec.recipe
    if has_retention(recipe):
        limits = ", ".join(f"{k}={v}" for k, v in _limits(recipe).items())
        limits = limits.replace("x-message-ttl=", "x-message-ttl(ms)=")
        # RabbitMQ dead-letters at most once, unconfirmed: a broker killed before it wrote
        # a drop to `.dropped` forgets it, and the ledger then counts that message lost.
        retention = (
            f"{limits}, overflow=drop-head, dropped -> {dropped_queue(spec)}"
            " (dead-lettered at most once: a kill can lose the record of recent drops)"
        )
    else:
        retention = "none"
    attempts = (
        "x-delivery-count + 1 (a rejected message is nacked with requeue)"
        if quorum
        else f"{ATTEMPTS} header + 1 (a rejected message is republished to the back of the"
        " queue, confirmed, then acked)"
    )
    return {
        "retention": retention,
        "dead_letters": f"{spec.dead_letter_queue} (classic, durable; published persistent"
        f" by the consumer after {recipe.max_attempts} attempts, confirmed before the"
        " original is acked)",
        "attempts": attempts,
    }


def dead_letter_properties(info: DeadLetterInfo) -> pika.BasicProperties:
    # pika cannot encode floats in a header table: the times travel as their repr, which
    # gives back the very same float.
    headers = {
        REASON: info.reason,
        ATTEMPTS: info.attempts,
        FIRST_FAILURE: repr(info.first_failure),
        LAST_FAILURE: repr(info.last_failure),
    }
    return pika.BasicProperties(
        delivery_mode=2,
        headers=headers,
        message_id=uuid.uuid4().hex[:12],  # the dead letter's id in `lab dlq`
        timestamp=int(time.time()),
    )


def without_broker_headers(props: pika.BasicProperties, persistent: bool) -> pika.BasicProperties:
    """Properties for a message sent back to the main queue: no x-lab-* (attempts start
    again), no x-death or x-delivery-count from its earlier life."""
    headers = {k: v for k, v in (props.headers or {}).items() if not k.startswith("x-")}
    return pika.BasicProperties(delivery_mode=2 if persistent else 1, headers=headers or None)


class Confirms:
    """Publishes through the default exchange on a session's channel in confirm mode and
    waits until the broker has taken every message (dead letters, retries, redrive)."""

    def __init__(self, session: "Session") -> None:
        self._session = session
        self._channel = session.channel
        self._next_tag = 1
        self._pending: set[int] = set()
        self._failed: str | None = None
        # mandatory + return: a message no queue took (the DLQ deleted) must not be
        # mistaken for one the broker keeps, or the original would be acked into nothing.
        self._channel.add_on_return_callback(self._on_return)
        session.call(CALL_TIMEOUT, self._channel.confirm_delivery, self._on_confirm)

    def _on_return(self, _ch: Channel, method: amqp.Basic.Return, _p: object, _b: bytes) -> None:
        self._failed = f"returned by RabbitMQ: no queue {method.routing_key!r}"

    def _on_confirm(self, method_frame: frame.Method) -> None:
        method = method_frame.method
        tag = method.delivery_tag
        if method.multiple:
            self._pending = {t for t in self._pending if t > tag}
        else:
            self._pending.discard(tag)
        if isinstance(method, amqp.Basic.Nack):
            self._failed = "nacked by RabbitMQ"

    def _all_confirmed(self) -> bool:
        return not self._pending

    def publish(
        self, routing_key: str, body: bytes, props: pika.BasicProperties, mandatory: bool = True
    ) -> None:
        try:
            self._channel.basic_publish("", routing_key, body, props, mandatory)
        except AMQPError as exc:
            raise BrokerError(self._session.error or f"publish failed: {exc!r}") from exc
        self._pending.add(self._next_tag)
        self._next_tag += 1

    def wait(self, timeout: float = CONFIRM_TIMEOUT) -> None:
        """Return when the broker confirmed everything published so far; BrokerError if
        it refused or returned any of it, or did not answer in time."""
        self._session.pump(timeout, self._all_confirmed)
        failed, self._failed = self._failed, None
        if self._pending:
            self._pending.clear()  # the caller starts afresh on a new session anyway
            raise BrokerError(f"RabbitMQ confirmed no publish within {timeout:g}s")
        if failed:
            raise BrokerError(failed)


class Publisher:
    """A consumer's own connection for publishing retries and dead letters, opened on
    first use. The consumer's connection must not publish: RabbitMQ blocks a connection
    that publishes during a memory alarm, and the one that acks must keep going then, or
    the queue never drains."""

    def __init__(self, connect: Callable[[], "Session"]) -> None:
        self._connect = connect
        self._open: tuple[Session, Confirms] | None = None

    def _confirms(self) -> Confirms:
        if self._open is not None:
            try:
                self._open[0].pump(0)  # pumped only when used: the broker may have dropped it
            except BrokerError:
                self.close()
        if self._open is None:
            session = self._connect()
            try:
                self._open = (session, Confirms(session))
            except BaseException:
                session.close()
                raise
        return self._open[1]

    def publish(
        self, batch: list[tuple[str, bytes, pika.BasicProperties]], mandatory: bool = True
    ) -> None:
        """Publish (routing key, body, properties) each and wait until all are confirmed.
        mandatory=False for direct reply-to addresses, which RabbitMQ returns as unrouted
        to a mandatory publish, though it delivers them."""
        confirms = self._confirms()
        try:
            for routing_key, body, props in batch:
                confirms.publish(routing_key, body, props, mandatory)
            confirms.wait()
        except BrokerError:
            # Whether the broker kept them is unknown. The caller has not acked the
            # originals yet: at worst a message exists twice, never not at all.
            self.close()
            raise

    def close(self) -> None:
        if self._open is not None:
            self._open[0].close()
            self._open = None


class _Inbox:
    """A consumer on one queue of a session, buffering deliveries until taken."""

    def __init__(self, session: "Session", queue: str, prefetch: int) -> None:
        self.session = session
        self.queue = queue
        self.buffer: deque[tuple[amqp.Basic.Deliver, pika.BasicProperties, bytes]] = deque()
        channel = session.channel
        session.call(CALL_TIMEOUT, channel.basic_qos, prefetch_count=prefetch)
        session.call(CALL_TIMEOUT, channel.basic_consume, queue, self._on_message)

    def _on_message(
        self, _ch: Channel, method: amqp.Basic.Deliver, props: pika.BasicProperties, body: bytes
    ) -> None:
        self.buffer.append((method, props, body))

    def has_buffered(self) -> bool:
        return bool(self.buffer)

    def take(self) -> list[tuple[amqp.Basic.Deliver, pika.BasicProperties, bytes]]:
        taken = list(self.buffer)
        self.buffer.clear()
        return taken

    def ack_through(self, delivery_tag: int) -> None:
        """Ack every delivery up to this one: all were taken, in order."""
        try:
            self.session.channel.basic_ack(delivery_tag, True)
        except AMQPError as exc:
            raise BrokerError(self.session.error or f"ack failed: {exc!r}") from exc
        self.session.pump(0)

    def ready(self) -> int:
        """Messages the queue holds that were not delivered to anyone. Deliveries made
        before the answer precede it on the channel: once it says 0, whatever is left
        is in the buffer."""
        ok = self.session.call(
            CALL_TIMEOUT, self.session.channel.queue_declare, self.queue, passive=True
        )
        return ok.method.message_count


class DropDrain:
    """Empties `<queue>.dropped` for the probe: names and counts what retention deleted.

    It keeps its own connection, consuming with a prefetch window, so a live probe takes
    what has arrived without a round trip per message."""

    def __init__(self, spec: RunSpec, connect: Callable[[], "Session"]) -> None:
        self._queue = dropped_queue(spec)
        self._tag = messages.run_tag(spec.run_id)
        self._connect = connect
        self._inbox: _Inbox | None = None
        self.total = 0  # messages drained so far, each counted once
        self.reasons: dict[str, int] = {}  # x-death reason -> count (maxlen, expired)
        # Named and counted, not yet handed to the engine: a take that fails after an ack
        # went out keeps them for the next one, or those messages would go unnamed.
        self._unreported = array("Q")
        # The latest ids named. A message comes back when an ack was lost with the
        # connection, or when a restarted broker recovers a drop it had acked: it must
        # not count twice.
        self._recent: set[int] = set()
        self._recent_order: deque[int] = deque()

    def take(self, final: bool) -> bytes:
        """Packed ids (producer << 40 | seq, as array('Q') bytes) of this run's messages
        drained since the last take; all there are when `final`, else about DRAIN_LIMIT."""
        try:
            if self._inbox is None:
                session = self._connect()
                try:
                    self._inbox = _Inbox(session, self._queue, DRAIN_PREFETCH)
                except BaseException:
                    session.close()
                    raise
            self._drain(self._inbox, final)
        except BrokerError:
            self.close()  # unacked messages go back to the queue, marked redelivered
            raise
        ids, self._unreported = self._unreported, array("Q")
        return ids.tobytes()

    def _drain(self, inbox: _Inbox, final: bool) -> None:
        taken = 0
        deadline = time.monotonic() + FINAL_TIMEOUT
        inbox.session.pump(0)
        while True:
            batch = inbox.take()
            if batch:
                self._name(batch)
                inbox.ack_through(batch[-1][0].delivery_tag)
                taken += len(batch)
            if final:
                if inbox.ready() == 0 and not inbox.buffer:
                    return
                if time.monotonic() > deadline:
                    raise BrokerError(f"{self._queue}: not drained in {FINAL_TIMEOUT:g}s")
            elif len(batch) < DRAIN_PREFETCH or taken >= DRAIN_LIMIT:
                return
            # A full window suggests more are waiting: one more round trip for them.
            inbox.session.pump(0.05, inbox.has_buffered)

    def _name(self, batch: list) -> None:
        reasons, recent, order, ids = (
            self.reasons,
            self._recent,
            self._recent_order,
            self._unreported,
        )
        for _method, props, body in batch:
            header = messages.decode(body)
            if header is not None and header.run_tag == self._tag:
                ident = messages.pack(header.producer, header.seq)
                if ident in recent:
                    continue
                recent.add(ident)
                order.append(ident)
                if len(order) > RECENT_IDS:
                    recent.discard(order.popleft())
                ids.append(ident)
            self.total += 1
            deaths = (props.headers or {}).get("x-death") or [{}]
            reason = str(deaths[0].get("reason", "unknown"))  # the latest death comes first
            reasons[reason] = reasons.get(reason, 0) + 1

    def close(self) -> None:
        if self._inbox is not None:
            self._inbox.session.close()
            self._inbox = None


def browse(session: "Session", spec: RunSpec, limit: int) -> list[DeadLetter]:
    """Up to `limit` dead letters, oldest first, read without an ack: the caller closes
    the session and RabbitMQ puts them back where they were."""
    if limit <= 0:
        return []
    dlq = spec.dead_letter_queue
    prefetch = limit if limit <= BROWSE_PREFETCH_MAX else 0  # 0: no limit
    inbox = _Inbox(session, dlq, prefetch)
    want = min(limit, inbox.ready() + len(inbox.buffer))
    session.pump(FINAL_TIMEOUT, lambda: len(inbox.buffer) >= want)
    letters = []
    for i, (_method, props, body) in enumerate(list(inbox.buffer)[:limit]):
        h = props.headers or {}
        letters.append(
            dead_letter_of(
                props.message_id or f"#{i + 1}",
                spec.run_id,
                body,
                str(h.get(REASON, "unknown")),
                int(h.get(ATTEMPTS, 0)),
                float(h.get(FIRST_FAILURE, 0.0)),
                float(h.get(LAST_FAILURE, 0.0)),
            )
        )
    return letters


def redrive(session: "Session", spec: RunSpec, persistent: bool) -> int:
    """Move every message of the DLQ to the main queue; return how many moved. Each batch
    is confirmed on the main queue before it is acked on the DLQ: a failure in between
    leaves a message in both (redelivered twice), never in neither."""
    confirms = Confirms(session)
    inbox = _Inbox(session, spec.dead_letter_queue, REDRIVE_PREFETCH)
    moved = 0
    idle_since = time.monotonic()
    while True:
        batch = inbox.take()
        if batch:
            for _method, props, body in batch:
                confirms.publish(spec.queue, body, without_broker_headers(props, persistent))
            confirms.wait()
            inbox.ack_through(batch[-1][0].delivery_tag)
            moved += len(batch)
            idle_since = time.monotonic()
            continue
        if inbox.ready() == 0 and not inbox.buffer:
            return moved
        if time.monotonic() - idle_since > FINAL_TIMEOUT:
            raise BrokerError(f"{spec.dead_letter_queue}: no message arrived to redrive")
        session.pump(0.5, inbox.has_buffered)
