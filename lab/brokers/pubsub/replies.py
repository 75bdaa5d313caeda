"""Request-reply on Pub/Sub: a reply topic per requester, `lab-<run>.reply-<requester>`,
with a subscription of the same name that only that requester reads (provision makes
both, teardown deletes them; resources.py).

The responder publishes each reply to its requester's topic with the request's
correlation id (producer-sequence) as an attribute, one unary Publish per requester in
the batch, so send() returns once the server has them all, before the requests are
acked. The requester pulls its subscription and acks what it took, on its next
receive() or on close: by then its round trips are measured, and the ack overlaps the
next request's.

How a requester waits: it pulls with return_immediately (deprecated, honoured by the
emulator and the service) every 5 ms until a reply comes or its wait is over. A pull
held on the emulator would answer late: its FakePubsubServer looks for messages every
50 ms while it holds a pull (and holds one only if its deadline is more than a second
away), which adds 25 ms on average to each leg it waits on (the responders' long pulls
pay it already). A held pull that the client abandons at its own deadline would also
leave whatever the server handed out meanwhile leased to nobody until the ack deadline,
the request timed out. On Google's service a streaming pull would be the better waiter.
"""

import time
from collections import defaultdict

import grpc
from google.api_core import exceptions as gexc
from google.pubsub_v1 import PublisherClient as TopicApi
from google.pubsub_v1 import SubscriberClient as SubscriptionApi
from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

from lab import messages
from lab.brokers.contract import BrokerError, ReplyReceiver, ReplySender, RunSpec
from lab.brokers.pubsub.backlog import ACK_CHUNK, PULL_MAX
from lab.brokers.pubsub.connection import Names, channel, reason
from lab.brokers.pubsub.producer import PUBLISH_RETRY
from lab.brokers.pubsub.resources import ADMIN_RETRY, CALL_TIMEOUT

CORRELATION = "correlation-id"
# A waiting requester pulls this often: the emulator, holding a pull, looks every 50 ms.
REPLY_POLL_S = 0.005
REPLY_PUBLISH_TIMEOUT = 10.0


def correlation_id(reply: bytes) -> str:
    header = messages.decode(reply)
    return f"{header.producer}-{header.seq}" if header else ""


class PubsubReplySender(ReplySender):
    def __init__(self, spec: RunSpec) -> None:
        self._topics = Names.of(spec).reply_topics
        self._channel: grpc.Channel = channel(spec.endpoint, spec.admin)
        self._api = TopicApi(transport=PublisherGrpcTransport(channel=self._channel))

    def send(self, replies: list[tuple[int, bytes]]) -> None:
        by_requester: dict[int, list[dict]] = defaultdict(list)
        for requester, reply in replies:
            attributes = {CORRELATION: correlation_id(reply)}
            by_requester[requester].append({"data": reply, "attributes": attributes})
        for requester, batch in by_requester.items():
            topic = self._topics[requester]
            try:
                self._api.publish(
                    topic=topic,
                    messages=batch,
                    retry=PUBLISH_RETRY,
                    timeout=REPLY_PUBLISH_TIMEOUT,
                )
            except gexc.GoogleAPIError as exc:
                raise BrokerError(f"pubsub: publishing replies to {topic}: {reason(exc)}") from exc

    def close(self) -> None:
        self._channel.close()


class PubsubReplyReceiver(ReplyReceiver):
    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        self._subscription = Names.of(spec).reply_subscriptions[producer_id]
        self._channel: grpc.Channel = channel(spec.endpoint, spec.admin)
        self._api = SubscriptionApi(transport=SubscriberGrpcTransport(channel=self._channel))
        self._unacked: list[str] = []  # ack ids of replies already handed out

    def receive(self, timeout: float) -> list[bytes]:
        self._ack()
        until = time.monotonic() + timeout
        request = {
            "subscription": self._subscription,
            "max_messages": PULL_MAX,
            "return_immediately": True,
        }
        while True:
            try:
                got = self._api.pull(request=request, retry=None, timeout=CALL_TIMEOUT)
            except gexc.GoogleAPIError as exc:
                raise BrokerError(f"pubsub: pulling replies: {reason(exc)}") from exc
            left = until - time.monotonic()
            if got.received_messages or left <= 0:
                break
            time.sleep(min(REPLY_POLL_S, left))
        self._unacked = [m.ack_id for m in got.received_messages]
        return [m.message.data for m in got.received_messages]

    def _ack(self) -> None:
        ids, self._unacked = self._unacked, []
        for i in range(0, len(ids), ACK_CHUNK):
            try:
                self._api.acknowledge(
                    request={"subscription": self._subscription, "ack_ids": ids[i : i + ACK_CHUNK]},
                    retry=ADMIN_RETRY,
                    timeout=CALL_TIMEOUT,
                )
            except gexc.GoogleAPIError as exc:
                # Redelivered at the ack deadline: the requester counts a duplicate reply.
                raise BrokerError(f"pubsub: acking replies: {reason(exc)}") from exc

    def close(self) -> None:
        try:
            self._ack()
        except BrokerError:
            pass  # the run's reply subscription goes at teardown with whatever it holds
        finally:
            self._channel.close()
