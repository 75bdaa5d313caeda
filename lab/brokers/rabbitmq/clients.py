"""The RabbitMQ producer (a window of publisher confirms) and consumer (manual acks).

Pub-sub: the producer publishes to the run's fanout exchange, each consumer reads its
subscriber's queue. Request-reply (direct reply-to): the producer's channel consumes
`amq.rabbitmq.reply-to` and its replies are read through it (replies.py); a responder
learns each request's reply address from the request's `reply-to` property.
"""

from collections import deque

import pika
from pika import frame
from pika import spec as amqp
from pika.channel import Channel
from pika.exceptions import AMQPError

from lab import messages
from lab.brokers.contract import (
    Ack,
    BrokerError,
    ConsumerClient,
    DeadLetterInfo,
    Delivery,
    Outgoing,
    ProducerClient,
)
from lab.brokers.rabbitmq import dlq as rdlq
from lab.brokers.rabbitmq.amqp import CONNECT_TIMEOUT, Session
from lab.endpoints import Endpoint

# The pseudo-queue of direct reply-to: consumed without acks, on the channel that
# publishes the requests; RabbitMQ rewrites it in each request to that channel's address.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


class RabbitMQProducer(ProducerClient):
    """window 0: no publisher confirms (fire-and-forget); nothing is ever acked.

    Publishes to `exchange` with routing key `queue` (the default exchange and the run's
    queue, or a fanout exchange, which ignores the key). `replies`: the channel also
    consumes direct reply-to, and each request names it as its reply address."""

    def __init__(
        self,
        queue: str,
        ep: Endpoint,
        persistent: bool,
        window: int,
        exchange: str = "",
        replies: bool = False,
    ) -> None:
        self._queue = queue
        self._exchange = exchange
        self._window = window
        mode = 2 if persistent else 1
        self._props = pika.BasicProperties(
            delivery_mode=mode, reply_to=DIRECT_REPLY_TO if replies else None
        )
        self._replies: list[bytes] = []
        # Direct reply-to ties the replies to this channel: a ReplyReceiver reading them
        # may outlive the producer (a requester waits for its last replies after the
        # producer is closed), so the connection closes when both are done with it.
        self._held = self._closed = False
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
            if window:
                self._session.call(
                    CONNECT_TIMEOUT, self._channel.confirm_delivery, self._on_confirm
                )
            if replies:
                # Before the first request: RabbitMQ refuses a reply-to address on a
                # channel that does not consume it.
                self._session.call(
                    CONNECT_TIMEOUT,
                    self._channel.basic_consume,
                    DIRECT_REPLY_TO,
                    self._on_reply,
                    auto_ack=True,
                )
        except BaseException:
            self._session.close()
            raise

    def _on_reply(self, _ch: Channel, _m: amqp.Basic.Deliver, _p: object, body: bytes) -> None:
        self._replies.append(body)

    def _has_replies(self) -> bool:
        return bool(self._replies)

    def take_replies(self, timeout: float) -> list[bytes]:
        """The replies that came to this channel, waiting up to `timeout` for the first."""
        self._session.pump(timeout, self._has_replies)
        replies, self._replies = self._replies, []
        return replies

    @property
    def broken(self) -> bool:
        """Its connection failed or was closed: no reply will come through it."""
        return self._session.error is not None

    def hold(self) -> None:
        """A ReplyReceiver reads through this producer's connection: keep it open."""
        self._held = True

    def release(self) -> None:
        """The ReplyReceiver is done: close the connection if the producer is too."""
        self._held = False
        if self._closed:
            self._session.close()

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
        exchange, confirming = self._exchange, self._window > 0
        for msg in batch:
            if confirming and len(inflight) >= self._window:
                session.coalesce_output()
                session.pump(None, self._has_room)  # backpressure; heartbeats end a dead wait
            try:
                publish(exchange, queue, msg.payload, props, confirming)
            except AMQPError as exc:
                raise BrokerError(session.error or f"publish failed: {exc!r}") from exc
            if confirming:
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
        self._closed = True
        if not self._held:
            self._session.close()


class RabbitMQConsumer(ConsumerClient):
    """Consumes the run's queue. Delivery.handle is (delivery tag, properties).

    Attempts: a quorum queue counts deliveries itself (x-delivery-count), so a rejected
    message is nacked with requeue. A classic queue counts nothing, so a rejected message
    is republished with its attempts in a header, and the original acked once the copy
    is confirmed (rdlq.Publisher: a second connection)."""

    def __init__(
        self,
        queue: str,
        dlq: str,
        ep: Endpoint,
        prefetch: int,
        broker_counts: bool,
        short_poll: bool = False,
        responder: bool = False,
    ) -> None:
        self._queue = queue
        # Request-reply: the reply address of each request received and not yet settled,
        # by its lab header (what the responder sends back). The worker replies before it
        # acks, so an address is kept exactly as long as it may be asked for.
        self._responder = responder
        self.reply_to: dict[bytes, str] = {}
        # Short polling is basic.get: the broker pushes nothing; each message is asked for.
        self._short_poll = short_poll
        self._got_answer = False
        self._got_empty = False
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
            if short_poll:
                channel.add_callback(self._on_get_empty, [amqp.Basic.GetEmpty], one_shot=False)
            else:
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

    def _on_get(self, *message: object) -> None:
        self._got_answer = True
        self._on_message(*message)

    def _on_get_empty(self, _frame: frame.Method) -> None:
        self._got_answer = self._got_empty = True

    def _answered(self) -> bool:
        return self._got_answer

    def _get(self, max_messages: int) -> list[Delivery]:
        """basic.get until `max_messages` or the queue is empty: a round trip each."""
        self._got_empty = False
        while len(self._buffer) < max_messages and not self._got_empty:
            self._got_answer = False
            try:
                self._channel.basic_get(self._queue, self._on_get)
            except AMQPError as exc:
                raise BrokerError(self._session.error or f"rabbitmq basic.get: {exc!r}") from exc
            self._session.pump(CONNECT_TIMEOUT, self._answered)
            if not self._got_answer:
                raise BrokerError(f"rabbitmq: no answer to basic.get in {CONNECT_TIMEOUT:g}s")
        buffer = self._buffer
        return [buffer.popleft() for _ in range(min(max_messages, len(buffer)))]

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self._short_poll:
            taken = self._get(max_messages)
        else:
            buffer = self._buffer
            self._session.pump(timeout, self._has_buffered)
            taken = [buffer.popleft() for _ in range(min(max_messages, len(buffer)))]
        if self._responder:
            size, addresses = messages.HEADER_SIZE, self.reply_to
            for d in taken:
                address = d.handle[1].reply_to
                if address:
                    addresses[d.payload[:size]] = address
        return taken

    @property
    def publisher(self) -> rdlq.Publisher:
        """The consumer's own publishing connection (retries, dead letters, replies)."""
        return self._publisher

    def _settle(self, deliveries: list[Delivery], requeue: bool | None) -> None:
        """basic.ack (requeue None) or basic.nack: one multiple=True frame when the tags
        cover every unsettled tag up to the highest, one frame per tag otherwise."""
        if not deliveries:
            return
        if self._responder:
            size, addresses = messages.HEADER_SIZE, self.reply_to
            for d in deliveries:
                addresses.pop(d.payload[:size], None)
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
