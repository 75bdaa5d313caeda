"""Request-reply on RabbitMQ: direct reply-to (`amq.rabbitmq.reply-to`), no reply queue.

RabbitMQ delivers a reply straight to the channel that published its request, and only
if that channel consumes the pseudo-queue (without acks). The contract has the
requester's producer and its ReplyReceiver as two objects, so in a requester's worker
the receiver reads through the producer's channel: the adapter hands out the producer
it made for that requester id, and the receiver follows it when a reconnect replaces it.
Both are used from the worker's one thread (each Session's I/O runs only when pumped),
and the connection stays open until both are done with it.

A responder reads each request's reply address from its `reply-to` property (the
consumer keeps those of its latest batch) and publishes the replies (transient: they
never rest in a queue) on the consumer's publishing connection in confirm mode, without
`mandatory` (RabbitMQ would return them as unrouted), waiting for the confirms before
the requests are acked. A reply whose requester's channel is gone is dropped by the
broker: the requester counts that request timed out.
"""

import pika

from lab.brokers.contract import BrokerError, ReplyReceiver, ReplySender
from lab.brokers.rabbitmq.clients import RabbitMQConsumer, RabbitMQProducer

_REPLY = pika.BasicProperties(delivery_mode=1)


class DirectReplies(ReplyReceiver):
    """One requester's replies, read through its producer's channel."""

    def __init__(self, requesters: dict[int, RabbitMQProducer], requester: int) -> None:
        self._requesters = requesters
        self._id = requester
        self._producer = self._current()
        self._producer.hold()

    def _current(self) -> RabbitMQProducer:
        producer = self._requesters.get(self._id)
        if producer is None or producer.broken:
            # Said at once, so the requester backs off until its producer reconnects.
            raise BrokerError(f"rabbitmq: requester {self._id} has no channel for its replies")
        return producer

    def receive(self, timeout: float) -> list[bytes]:
        producer = self._current()
        if producer is not self._producer:
            # The producer reconnected: replies to requests sent on the old channel are
            # gone with it (RabbitMQ drops them); read the new one's.
            self._producer.release()
            self._producer = producer
            producer.hold()
        return producer.take_replies(timeout)

    def close(self) -> None:
        self._producer.release()


class DirectReplySender(ReplySender):
    """A responder's replies, each to the address its request carried."""

    def __init__(self, consumer: RabbitMQConsumer) -> None:
        self._consumer = consumer

    def send(self, replies: list[tuple[int, bytes]]) -> None:
        addresses = self._consumer.reply_to
        # A request without an address (published by no requester of this run) has no
        # one to answer: it is skipped, and nobody waits for it.
        batch = [(addresses[r], r, _REPLY) for _, r in replies if r in addresses]
        if batch:
            self._consumer.publisher.publish(batch, mandatory=False)

    def close(self) -> None:
        pass  # the publishing connection is the consumer's, closed with it
