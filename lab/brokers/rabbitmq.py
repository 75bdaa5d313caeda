"""RabbitMQ through pika: a durable work queue fed through the default exchange.

Every client (producer, consumer, the engine's admin channel) is a SelectConnection whose
I/O loop runs only inside `Session.pump`, driven by the caller: no background thread,
and nothing waits unless the caller asked to. That lets a producer keep a window of
publisher confirms in flight; a BlockingChannel in confirm mode waits for each confirm
and tops out near 1.5k msgs/s on the lab's machine.

Retention, dead letters and retries by republishing live in rabbitmq_dlq.py.
"""

import logging
import time
from collections import deque
from collections.abc import Callable

import pika
from pika import frame
from pika import spec as amqp
from pika.adapters.select_connection import IOLoop, SelectConnection
from pika.channel import Channel
from pika.exceptions import AMQPError

from lab.brokers import rabbitmq_dlq as rdlq
from lab.brokers.base import (
    Ack,
    BrokerAdapter,
    BrokerError,
    ConsumerClient,
    DeadLetterInfo,
    Delivery,
    Outgoing,
    Probe,
    ProducerClient,
    RunSpec,
)
from lab.dlq import DeadLetter
from lab.endpoints import Endpoint

# pika logs a lost or refused connection at ERROR; the adapter raises BrokerError instead,
# and the workers decide what is worth saying.
logging.getLogger("pika").setLevel(logging.CRITICAL)

CONNECT_TIMEOUT = 10.0
SETUP_TIMEOUT = 30.0  # declaring a quorum queue waits for its Raft group to form
PROBE_TIMEOUT = 2.0  # a probe runs twice a second: a stalled broker must not hold the engine
CLOSE_TIMEOUT = 5.0


def _never() -> bool:
    return False


def _nothing() -> None:
    pass


class Session:
    """One connection and one channel, whose I/O runs only while pump() runs."""

    def __init__(self, ep: Endpoint, timeout: float = CONNECT_TIMEOUT) -> None:
        self.error: str | None = None
        self._closing = False
        self._where = f"RabbitMQ at {ep.host}:{ep.port}"
        params = pika.ConnectionParameters(
            host=ep.host,
            port=ep.port,
            virtual_host=ep.path or "/",
            credentials=pika.PlainCredentials(ep.username or "guest", ep.password or ""),
            connection_attempts=1,
            socket_timeout=timeout,
            stack_timeout=timeout,
        )
        self._loop = IOLoop()
        self._loop.activate_poller()
        opened: list = []
        try:
            self._conn = SelectConnection(
                params,
                on_open_callback=opened.append,
                on_open_error_callback=self._on_open_failed,
                on_close_callback=self._on_lost,
                custom_ioloop=self._loop,
            )
            self._await(opened, "connect", timeout)
            self._conn.channel(on_open_callback=opened.append)
            self._await(opened, "open a channel", timeout)
        except BaseException:
            self.close()
            raise
        self.channel: Channel = opened[1]
        self.channel.add_on_close_callback(self._on_channel_closed)

    def _on_open_failed(self, _conn: object, exc: BaseException) -> None:
        self.error = f"cannot connect to {self._where}: {exc!r}"

    def _on_lost(self, _conn: object, exc: BaseException) -> None:
        if not self._closing:
            self.error = f"{self._where}: connection lost: {exc!r}"

    def _on_channel_closed(self, _channel: Channel, exc: BaseException) -> None:
        if not self._closing:
            self.error = f"{self._where}: channel closed: {exc!r}"

    def pump(self, timeout: float | None, until: Callable[[], bool] = _never) -> None:
        """Run the I/O loop until `until()` holds or `timeout` seconds pass (None: no limit;
        0: one pass that sends what is buffered and takes what has arrived)."""
        if self.error:
            raise BrokerError(self.error)
        loop = self._loop
        if until():
            timeout = 0
        deadline = timer = None
        if timeout is not None:
            deadline = time.monotonic() + timeout
            timer = loop.call_later(timeout, _nothing)  # caps how long one poll may block
        try:
            while True:
                loop.poll()
                loop.process_timeouts()
                if self.error:
                    raise BrokerError(self.error)
                if until() or (deadline is not None and time.monotonic() >= deadline):
                    return
        finally:
            if timer is not None:
                loop.remove_timeout(timer)

    def _await(self, box: list, what: str, timeout: float) -> None:
        want = len(box) + 1
        self.pump(timeout, lambda: len(box) >= want)
        if len(box) < want:
            raise BrokerError(f"{self._where}: no answer within {timeout:g}s to {what}")

    def call(
        self, timeout: float, method: Callable[..., object], *args: object, **kw: object
    ) -> frame.Method:
        """An AMQP method that answers through `callback`: wait for the answer, return it."""
        box: list = []
        try:
            method(*args, callback=box.append, **kw)
        except AMQPError as exc:  # the channel or connection closed since the last pump
            raise BrokerError(self.error or f"{self._where}: {exc!r}") from exc
        self._await(box, method.__name__, timeout)
        return box[0]

    def coalesce_output(self) -> None:
        """Join the frames waiting to be written into one buffer. pika writes each frame
        with its own send() call, three per message; one call per batch halves the
        producer's CPU per message. This is pika's private state, so a release that
        renames it only loses the saving."""
        buffers = getattr(getattr(self._conn, "_transport", None), "_tx_buffers", None)
        if buffers is not None and len(buffers) > 1:
            joined = b"".join(buffers)
            buffers.clear()
            buffers.append(joined)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        conn = getattr(self, "_conn", None)  # absent when the constructor failed early
        try:
            if conn is not None and not (conn.is_closed or conn.is_closing):
                conn.close()
            self.error = None
            if conn is not None:
                self.pump(CLOSE_TIMEOUT, lambda: conn.is_closed)
        except (AMQPError, BrokerError):
            pass  # already gone: nothing left to release but the loop
        finally:
            self._loop.close()
            self.error = "the connection was closed"  # any later use raises BrokerError


class RabbitMQProducer(ProducerClient):
    def __init__(self, queue: str, ep: Endpoint, persistent: bool, window: int) -> None:
        self._queue = queue
        self._window = window
        self._props = pika.BasicProperties(delivery_mode=2 if persistent else 1)
        # A confirm-mode channel numbers its publishes 1, 2, 3...; confirms name that tag.
        self._inflight: dict[int, Outgoing] = {}
        self._next_tag = 1
        self._oldest = 1  # every tag below this one is settled
        self._acks: list[Ack] = []
        self._returned: list[bytes] = []
        self._session = Session(ep)
        self._channel = self._session.channel
        try:
            # mandatory + return: a message no queue took (queue deleted mid-run) is a
            # failure, not a confirmed success.
            self._channel.add_on_return_callback(self._on_return)
            self._session.call(CONNECT_TIMEOUT, self._channel.confirm_delivery, self._on_confirm)
        except BaseException:
            self._session.close()
            raise

    def _on_return(self, _ch: Channel, _m: amqp.Basic.Return, _p: object, body: bytes) -> None:
        self._returned.append(body)  # the broker sends it just before that message's ack

    def _on_confirm(self, method_frame: frame.Method) -> None:
        method = method_frame.method
        ok = isinstance(method, amqp.Basic.Ack)
        error = None if ok else "nacked by RabbitMQ"
        tag = method.delivery_tag
        inflight, acks, returned = self._inflight, self._acks, self._returned
        for t in range(self._oldest, tag + 1) if method.multiple else (tag,):
            msg = inflight.pop(t, None)
            if msg is None:
                continue
            if returned and msg.payload in returned:
                returned.remove(msg.payload)
                acks.append(Ack(msg.seq, msg.intended_ns, False, "returned: no queue took it"))
            else:
                acks.append(Ack(msg.seq, msg.intended_ns, ok, error))
        if method.multiple:
            self._oldest = max(self._oldest, tag + 1)
        while self._oldest < self._next_tag and self._oldest not in inflight:
            self._oldest += 1

    def _has_room(self) -> bool:
        return len(self._inflight) < self._window

    def _has_acks(self) -> bool:
        return bool(self._acks)

    def _all_confirmed(self) -> bool:
        return not self._inflight

    def send(self, batch: list[Outgoing]) -> None:
        session, inflight = self._session, self._inflight
        publish, queue, props = self._channel.basic_publish, self._queue, self._props
        for msg in batch:
            if len(inflight) >= self._window:
                session.coalesce_output()
                session.pump(None, self._has_room)  # backpressure; heartbeats end a dead wait
            try:
                publish("", queue, msg.payload, props, True)
            except AMQPError as exc:
                raise BrokerError(session.error or f"publish failed: {exc!r}") from exc
            inflight[self._next_tag] = msg
            self._next_tag += 1
        session.coalesce_output()
        session.pump(0)  # put the batch on the wire now, not at the next poll

    def _take(self) -> list[Ack]:
        acks, self._acks = self._acks, []
        return acks

    def poll(self, timeout: float) -> list[Ack]:
        self._session.pump(timeout, self._has_acks)
        return self._take()

    def flush(self, timeout: float) -> list[Ack]:
        # Messages still unconfirmed at the timeout stay in flight: a later poll may ack them.
        self._session.pump(timeout, self._all_confirmed)
        return self._take()

    def close(self) -> None:
        self._session.close()


class RabbitMQConsumer(ConsumerClient):
    """Consumes the run's queue. Delivery.handle is (delivery tag, properties).

    Attempts: a quorum queue counts deliveries itself (x-delivery-count), so a rejected
    message is nacked with requeue. A classic queue counts nothing, so a rejected message
    is republished with its attempts in a header, and the original acked once the copy
    is confirmed (rdlq.Publisher: a second connection)."""

    def __init__(
        self, queue: str, dlq: str, ep: Endpoint, prefetch: int, broker_counts: bool
    ) -> None:
        self._queue = queue
        self._dlq = dlq
        self._broker_counts = broker_counts
        self._publisher = rdlq.Publisher(lambda: Session(ep))  # connects on first use
        self._buffer: deque[Delivery] = deque()
        self._unsettled = 1  # every delivery tag below this one is acked or rejected
        self._settled_ahead: set[int] = set()
        self._session = Session(ep)
        self._channel = channel = self._session.channel
        try:
            self._session.call(CONNECT_TIMEOUT, channel.basic_qos, prefetch_count=prefetch)
            channel.add_on_cancel_callback(self._on_cancel)
            self._session.call(CONNECT_TIMEOUT, channel.basic_consume, queue, self._on_message)
        except BaseException:
            self._session.close()
            raise

    def _on_cancel(self, _frame: frame.Method) -> None:
        self._session.error = "RabbitMQ cancelled the consumer (queue deleted?)"

    def _on_message(
        self, _ch: Channel, method: amqp.Basic.Deliver, props: pika.BasicProperties, body: bytes
    ) -> None:
        headers = props.headers
        if self._broker_counts:
            attempts = (headers.get("x-delivery-count", 0) if headers else 0) + 1
        else:
            attempts = (headers.get(rdlq.ATTEMPTS, 0) if headers else 0) + 1
            if method.redelivered:
                # A consumer died holding this copy: one more attempt at least (AMQP
                # says that it was delivered before, not how often).
                attempts += 1
        self._buffer.append(Delivery(body, (method.delivery_tag, props), attempts))

    def _has_buffered(self) -> bool:
        return bool(self._buffer)

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        buffer = self._buffer
        self._session.pump(timeout, self._has_buffered)
        return [buffer.popleft() for _ in range(min(max_messages, len(buffer)))]

    def _settle(self, deliveries: list[Delivery], requeue: bool | None) -> None:
        """basic.ack (requeue None) or basic.nack: one multiple=True frame when the tags
        cover every unsettled tag up to the highest, one frame per tag otherwise."""
        if not deliveries:
            return
        channel, ahead = self._channel, self._settled_ahead
        tags: list[int] = [d.handle[0] for d in deliveries]
        high = max(tags)
        covered = len(tags) + (sum(1 for t in ahead if t < high) if ahead else 0)
        try:
            if covered == high - self._unsettled + 1:
                if requeue is None:
                    channel.basic_ack(high, True)
                else:
                    channel.basic_nack(high, True, requeue)
                self._unsettled = high + 1
                ahead.difference_update([t for t in ahead if t < high])
            else:
                for t in tags:
                    if requeue is None:
                        channel.basic_ack(t)
                    else:
                        channel.basic_nack(t, False, requeue)
                ahead.update(tags)
        except AMQPError as exc:
            raise BrokerError(self._session.error or f"ack failed: {exc!r}") from exc
        while self._unsettled in ahead:
            ahead.remove(self._unsettled)
            self._unsettled += 1
        self._session.pump(0)  # the broker frees prefetch slots only when the frame arrives

    def ack(self, deliveries: list[Delivery]) -> None:
        self._settle(deliveries, None)

    def reject(self, deliveries: list[Delivery]) -> None:
        if self._broker_counts:
            self._settle(deliveries, True)
            return
        retries = []
        for d in deliveries:
            props: pika.BasicProperties = d.handle[1]
            headers = {**(props.headers or {}), rdlq.ATTEMPTS: d.attempts}
            copy = pika.BasicProperties(delivery_mode=props.delivery_mode, headers=headers)
            retries.append((self._queue, d.payload, copy))
        self._publisher.publish(retries)
        self._settle(deliveries, None)

    def dead_letter(self, letters: list[tuple[Delivery, DeadLetterInfo]]) -> None:
        if not letters:
            return
        self._publisher.publish(
            [(self._dlq, d.payload, rdlq.dead_letter_properties(info)) for d, info in letters]
        )
        self._settle([d for d, _ in letters], None)

    def close(self) -> None:
        # Closing with messages unacked hands them back to the queue for other consumers.
        self._publisher.close()
        self._session.close()


class RabbitMQAdapter(BrokerAdapter):
    name = "rabbitmq"

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._admin: Session | None = None
        options = self.spec.recipe.rabbitmq
        self._quorum = options.queue_type == "quorum"
        self._persistent = self.spec.recipe.durability == "safe"
        # Only a run with a retention limit has a `.dropped` queue to drain.
        self._drain = (
            rdlq.DropDrain(spec, self._connect) if rdlq.has_retention(spec.recipe) else None
        )

    def _admin_call(self, timeout: float, name: str, *args: object, **kw: object) -> frame.Method:
        """An AMQP method on the engine's one session, opened again if it died since the
        last call (a killed or restarted broker, an idle connection it dropped)."""
        session = self._admin
        if session is not None:
            try:
                session.pump(0)
            except BrokerError:
                session.close()
                session = self._admin = None
        if session is None:
            session = self._admin = Session(self.spec.admin, min(timeout, CONNECT_TIMEOUT))
        try:
            return session.call(timeout, getattr(session.channel, name), *args, **kw)
        except BrokerError:
            # An unanswered or refused call leaves the channel in doubt: start afresh.
            session.close()
            self._admin = None
            raise

    def _connect(self) -> Session:
        return Session(self.spec.admin)

    def provision(self) -> None:
        spec = self.spec
        queue_type = "quorum" if self._quorum else "classic"
        # The destinations first, so the main queue never dead-letters into nothing.
        # `.dropped` is of the main queue's type, so a quorum run keeps its losses in a
        # replicated log like its messages. The DLQ is always classic: browsing returns
        # messages to the queue, and a classic queue puts them back where they were, while
        # a quorum queue (3.10) puts them behind the ones it never handed out.
        queues = [(spec.dead_letter_queue, {"x-queue-type": "classic"})]
        if self._drain is not None:
            queues.append((rdlq.dropped_queue(spec), {"x-queue-type": queue_type}))
        queues.append((spec.queue, rdlq.queue_arguments(spec, queue_type)))
        for name, arguments in queues:
            self._admin_call(
                SETUP_TIMEOUT, "queue_declare", name, durable=True, arguments=arguments
            )

    def probe(self, final: bool = False) -> Probe:
        timeout = SETUP_TIMEOUT if final else PROBE_TIMEOUT
        ok = self._admin_call(timeout, "queue_declare", self.spec.queue, passive=True)
        dlq = self._admin_call(timeout, "queue_declare", self.spec.dead_letter_queue, passive=True)
        detail: dict = {"consumers": ok.method.consumer_count}
        dropped, retention_dropped = b"", None
        if self._drain is not None:
            # Last: once the drain acked its messages, nothing may fail before they are
            # handed to the engine.
            try:
                dropped = self._drain.take(final)
                retention_dropped = self._drain.total
                detail["dropped_by_reason"] = dict(self._drain.reasons)
            except BrokerError as exc:
                if "NOT_FOUND" not in str(exc):
                    raise
                # `.dropped` is gone: a run torn down with its dead letters kept.
                detail["dropped_queue"] = "missing"
        # Ready messages only: AMQP does not report those delivered and not yet acked.
        return Probe(
            depth=ok.method.message_count,
            dead_letters=dlq.method.message_count,
            retention_dropped=retention_dropped,
            dropped=dropped,
            detail=detail,
        )

    def teardown(self, keep_dead_letters: bool = False) -> None:
        if self._drain is not None:
            self._drain.close()
        spec = self.spec
        self._admin_call(SETUP_TIMEOUT, "queue_delete", rdlq.dropped_queue(spec))
        if not keep_dead_letters:
            self._admin_call(SETUP_TIMEOUT, "queue_delete", spec.queue)
            self._admin_call(SETUP_TIMEOUT, "queue_delete", spec.dead_letter_queue)

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        # A session of its own: closing it is what puts the browsed messages back.
        session = self._connect()
        try:
            return rdlq.browse(session, self.spec, limit)
        finally:
            session.close()

    def redrive(self) -> int:
        session = self._connect()
        try:
            return rdlq.redrive(session, self.spec, self._persistent)
        finally:
            session.close()

    def settings(self) -> dict[str, str]:
        recipe = self.spec.recipe
        mode = "2 (persistent)" if self._persistent else "1 (transient)"
        if self._quorum:
            mode += "; quorum queues persist every message whatever the mode"
        return {
            "queue_type": recipe.rabbitmq.queue_type,
            "queue_durable": "true",
            "delivery_mode": mode,
            "publisher_confirms": f"window of {recipe.rabbitmq.confirm_window}",
            "consumer_acks": "manual",
            "prefetch": str(recipe.consumers.prefetch),
            **rdlq.settings(self.spec, self._quorum),
        }

    def producer(self, producer_id: int) -> ProducerClient:
        window = self.spec.recipe.rabbitmq.confirm_window
        return RabbitMQProducer(self.spec.queue, self.spec.endpoint, self._persistent, window)

    def consumer(self, consumer_id: int) -> ConsumerClient:
        spec = self.spec
        prefetch = spec.recipe.consumers.prefetch
        return RabbitMQConsumer(
            spec.queue, spec.dead_letter_queue, spec.endpoint, prefetch, self._quorum
        )

    def client_version(self) -> str:
        return f"pika {pika.__version__}"

    def close(self) -> None:
        if self._drain is not None:
            self._drain.close()
        if self._admin is not None:
            self._admin.close()
            self._admin = None
