"""The consumers of a Pub/Sub run, in worker processes: synchronous pull calls (the
default) or a streaming pull, which Google recommends (`[pubsub] pull = "streaming"`).

Both ack and nack with unary calls that return once the server has them, so a worker
that acked knows the message is done, and both give back on close what the worker did
not settle. The streaming consumer's thread reads the stream into a queue that
receive() takes from, the shape the worker expects; another thread extends the lease of
every message held (queued or handed out) by the ack deadline, as google-cloud-pubsub's
own subscriber does, and sends the stream's heartbeat. Flow control: the stream asks for
at most the recipe's prefetch outstanding (max_outstanding_messages). Google's service
applies it; the emulator ignores it and pushes whatever it has, which the consumer
holds, leases extended, until the worker takes it.

Why not google-cloud-pubsub's subscriber (SubscriberClient.subscribe): it ends its
stream with a cancel (an HTTP/2 RST_STREAM), and the emulator 0.8.20 fails on that
(NoSuchMethodError in its bundled gRPC's onRstStreamRead) and never ends the call. The
stream lives on as a zombie that the emulator keeps delivering to: its messages come
back only at their ack deadline, delivery attempts counted up, again and again. This
consumer ends its stream with a half-close, which the emulator answers by ending the
call. A stream that ends abruptly, though (the consumer SIGKILLed, its connection
reset by the chaos proxy), leaves the same zombie, and messages held by it are out of
everyone's reach for several ack deadlines: at the end of a run the ledger may call
them lost. Synchronous pull has no stream to leave behind: after a consumer crash its
messages come back once, at their ack deadline. So it is the default; it is also the
quicker of the two on the emulator (quickstart: end-to-end p50 7 ms, against 34 ms).
"""

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator

import grpc
from google.api_core import exceptions as gexc
from google.pubsub_v1 import ReceivedMessage, StreamingPullRequest
from google.pubsub_v1 import SubscriberClient as SubscriptionApi
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

from lab.brokers.contract import BrokerError, ConsumerClient, DeadLetterInfo, Delivery, RunSpec
from lab.brokers.pubsub import dlq
from lab.brokers.pubsub.backlog import ACK_CHUNK, PULL_MAX
from lab.brokers.pubsub.connection import Names, channel, reason
from lab.brokers.pubsub.producer import publisher_client
from lab.brokers.pubsub.resources import ADMIN_RETRY, CALL_TIMEOUT

HEARTBEAT_S = 30.0  # Google's service closes a stream that stays silent for long
CLOSE_WAIT = 5.0  # for the server to end the stream after the half-close
MAX_OUTSTANDING_BYTES = 100 << 20
MIN_PULL_WAIT = 0.1


class SubscriptionConsumer(ConsumerClient):
    """What both ways of pulling share: the subscription, the unary acks and nacks,
    the dead letters, and giving back on close what was not settled."""

    def __init__(self, spec: RunSpec) -> None:
        self._names = Names.of(spec)
        self._channel = channel(spec.endpoint, spec.admin)
        self._api = SubscriptionApi(transport=SubscriberGrpcTransport(channel=self._channel))
        try:
            config = self._api.get_subscription(
                subscription=self._names.subscription, retry=ADMIN_RETRY, timeout=CALL_TIMEOUT
            )
        except gexc.GoogleAPIError as exc:
            self._channel.close()
            raise BrokerError(f"pubsub: {self._names.subscription}: {reason(exc)}") from exc
        # Deliveries that reached this count are the policy's to move (dlq.py).
        self._policy_attempts = config.dead_letter_policy.max_delivery_attempts or None
        self._deadline = int(spec.options.ack_deadline)
        self._publisher = None  # for dead letters of our own, made when first needed
        self._cond = threading.Condition()
        self._held: dict[str, ReceivedMessage] = {}  # leased by us, by ack id

    def ack(self, deliveries: list[Delivery]) -> None:
        ids = [d.handle for d in deliveries]
        for i in range(0, len(ids), ACK_CHUNK):
            self._call(
                self._api.acknowledge,
                subscription=self._names.subscription,
                ack_ids=ids[i : i + ACK_CHUNK],
            )
        self._settled(ids)

    def reject(self, deliveries: list[Delivery]) -> None:
        # A nack: redelivered at once, with delivery_attempt counted up.
        ids = [d.handle for d in deliveries]
        self._modify(ids, 0)
        self._settled(ids)

    def dead_letter(self, letters: list[tuple[Delivery, DeadLetterInfo]]) -> None:
        limit = self._policy_attempts
        by_policy = [d for d, _ in letters if limit and d.attempts >= limit]
        mine = [(d, info) for d, info in letters if not (limit and d.attempts >= limit)]
        if mine:
            if self._publisher is None:
                self._publisher = publisher_client(self._channel)
            items = [(d.payload, dlq.attributes(info)) for d, info in mine]
            dlq.publish(self._publisher, self._names.dlq_topic, items)
            self.ack([d for d, _ in mine])
        self.reject(by_policy)

    def close(self) -> None:
        # What the worker took and did not settle goes back now, as a consumer that
        # shuts down hands its messages to the others (a crashed one leaves them to
        # their ack deadline).
        with self._cond:
            ids, self._held = list(self._held), {}
        try:
            self._modify(ids, 0, retry=None)
        except BrokerError:
            pass  # unreachable: they come back at their ack deadline instead
        finally:
            if self._publisher is not None:
                self._publisher.stop()
            self._channel.close()

    def _deliveries(self, got: list[ReceivedMessage]) -> list[Delivery]:
        return [Delivery(m.message.data, m.ack_id, m.delivery_attempt) for m in got]

    def _settled(self, ack_ids: list[str]) -> None:
        with self._cond:
            for ack_id in ack_ids:
                self._held.pop(ack_id, None)

    def _modify(self, ack_ids: list[str], seconds: int, retry: object = ADMIN_RETRY) -> None:
        for i in range(0, len(ack_ids), ACK_CHUNK):
            self._call(
                self._api.modify_ack_deadline,
                retry,
                subscription=self._names.subscription,
                ack_ids=ack_ids[i : i + ACK_CHUNK],
                ack_deadline_seconds=seconds,
            )

    def _call(self, method: object, retry: object = ADMIN_RETRY, **request: object) -> None:
        try:
            method(request=request, retry=retry, timeout=CALL_TIMEOUT)
        except gexc.GoogleAPIError as exc:
            raise BrokerError(f"pubsub: {reason(exc)}") from exc


class StreamingConsumer(SubscriptionConsumer):
    def __init__(self, spec: RunSpec, consumer_id: int) -> None:
        super().__init__(spec)
        self._ready: deque[ReceivedMessage] = deque()  # arrived, not yet handed out
        self._failure: BaseException | None = None
        self._ended = False
        self._closing = threading.Event()
        self._requests: queue.SimpleQueue[StreamingPullRequest | None] = queue.SimpleQueue()
        self._requests.put(
            StreamingPullRequest(
                subscription=self._names.subscription,
                stream_ack_deadline_seconds=self._deadline,
                max_outstanding_messages=spec.recipe.consumers.prefetch,
                max_outstanding_bytes=MAX_OUTSTANDING_BYTES,
            )
        )
        # The raw call: no retries of its own (the worker reconnects), and a cancel()
        # for a server that does not end the stream when asked.
        self._stream = self._api.transport.streaming_pull(
            self._request_stream(),
            metadata=[("x-goog-request-params", f"subscription={self._names.subscription}")],
        )
        self._threads = [
            threading.Thread(target=self._read, name=f"pubsub-read-{consumer_id}", daemon=True),
            threading.Thread(target=self._lease, name=f"pubsub-lease-{consumer_id}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # --- the stream's threads ----------------------------------------------------------

    def _request_stream(self) -> Iterator[StreamingPullRequest]:
        while (request := self._requests.get()) is not None:
            yield request

    def _read(self) -> None:
        try:
            for response in self._stream:
                with self._cond:
                    for m in response.received_messages:
                        if m.ack_id not in self._held:
                            self._held[m.ack_id] = m
                            self._ready.append(m)
                    self._cond.notify_all()
        except grpc.RpcError as exc:
            if not self._closing.is_set():
                self._failure = gexc.from_grpc_error(exc)
        except Exception as exc:  # a channel closed under the stream, say
            if not self._closing.is_set():
                self._failure = exc
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _lease(self) -> None:
        every = max(1.0, self._deadline / 3)
        beat = time.monotonic() + HEARTBEAT_S
        while not self._closing.wait(every):
            with self._cond:
                ids = list(self._held)
            # A failure here shows as the stream's: the reader sees it end.
            with contextlib.suppress(BrokerError):
                self._modify(ids, self._deadline)
            if time.monotonic() >= beat:
                self._requests.put(StreamingPullRequest())
                beat = time.monotonic() + HEARTBEAT_S

    # --- what the worker calls ---------------------------------------------------------

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        with self._cond:
            if not self._ready:
                self._cond.wait_for(lambda: self._ready or self._ended, timeout)
            if not self._ready and self._ended:
                why = reason(self._failure) if self._failure else "the server ended it"
                raise BrokerError(f"pubsub: streaming pull: {why}")
            count = min(max_messages, len(self._ready))
            got = [self._ready.popleft() for _ in range(count)]
        return self._deliveries(got)

    def close(self) -> None:
        self._closing.set()
        self._requests.put(None)  # the half-close: the server ends the stream
        reader = self._threads[0]
        reader.join(CLOSE_WAIT)
        if reader.is_alive():
            self._stream.cancel()
            reader.join(CLOSE_WAIT)
        self._threads[1].join(CLOSE_WAIT)
        # Only now: while the stream lived, the server would have delivered what goes
        # back to the same stream again.
        with self._cond:
            self._ready.clear()
        super().close()


class SynchronousConsumer(SubscriptionConsumer):
    """Pull calls, one per receive(): no stream, so nothing for the emulator to keep
    alive after a consumer dies or its connection is reset (see the module's doc). A
    pull waits on the server for messages up to receive()'s timeout; the emulator ends
    it there itself, with nothing."""

    def __init__(self, spec: RunSpec, consumer_id: int) -> None:
        super().__init__(spec)

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        try:
            got = self._api.pull(
                request={
                    "subscription": self._names.subscription,
                    "max_messages": min(max_messages, PULL_MAX),
                },
                retry=None,
                timeout=max(timeout, MIN_PULL_WAIT),
            ).received_messages
        except gexc.DeadlineExceeded:
            return []
        except gexc.GoogleAPIError as exc:
            raise BrokerError(f"pubsub: pull: {reason(exc)}") from exc
        with self._cond:
            self._held.update((m.ack_id, m) for m in got)
        return self._deliveries(list(got))
