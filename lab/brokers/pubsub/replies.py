"""Request-reply on Pub/Sub: a reply topic per requester, `lab-<run>.reply-<requester>`,
with a subscription of the same name that only that requester reads (provision makes
both, teardown deletes them; resources.py).

The responder publishes each reply to its requester's topic with the request's
correlation id (producer-sequence) as an attribute, one unary Publish per requester in
the batch, so send() returns once the server has them all, before the requests are
acked. The requester pulls its subscription and acks what it took, on its next
receive() or on close: by then its round trips are measured, and the ack overlaps the
next request's.

How long a pull waits is the emulator's business: a Pull whose deadline is more than a
second away is held on the server, which looks for messages every 50 ms (its
FakePubsubServer sleeps 50 ms between looks) and answers empty a second before the
deadline; a nearer deadline gets an answer at once. So a receive of `timeout` asks for
a deadline one second beyond it: the server waits up to `timeout`, answers before the
client gives up (a pull the client abandons would leave its messages leased to nobody
until their ack deadline, the request timed out), and a reply waits up to 50 ms to be
seen, as a responder's request does.
"""

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
# The emulator answers a pull at once unless its deadline is more than this far away.
EMULATOR_HOLD_MARGIN = 1.0
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
        try:
            got = self._api.pull(
                request={"subscription": self._subscription, "max_messages": PULL_MAX},
                retry=None,
                timeout=timeout + EMULATOR_HOLD_MARGIN,
            ).received_messages
        except gexc.DeadlineExceeded:
            return []
        except gexc.GoogleAPIError as exc:
            raise BrokerError(f"pubsub: pulling replies: {reason(exc)}") from exc
        self._unacked = [m.ack_id for m in got]
        return [m.message.data for m in got]

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
