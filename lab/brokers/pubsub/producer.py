"""The producer of a Pub/Sub run (google-cloud-pubsub's PublisherClient), in a worker.

The client's own batching (up to 1000 messages, 1 MB or 5 ms per publish request), acks
from the futures it returns, the message's ordering key when the recipe asks for
ordering. A producer that finds the run's subscription gone creates everything again
before it publishes: an emulator that restarted has forgotten all of it, and a message
published to a topic without the subscription would reach nobody.
"""

import functools
import threading

import grpc
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.api_core.timeout import ConstantTimeout
from google.cloud import pubsub_v1
from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport

from lab.brokers.contract import (
    Ack,
    BrokerError,
    Outgoing,
    ProducerClient,
    RunSpec,
)
from lab.brokers.pubsub.connection import Names, channel, gone, reason
from lab.brokers.pubsub.resources import Admin, ensure, exists

BATCH = pubsub_v1.types.BatchSettings(max_messages=1000, max_bytes=1_000_000, max_latency=0.005)
# A publish is retried while the server is unreachable or paused, for this long in all.
PUBLISH_DEADLINE = 30.0
PUBLISH_RETRY = Retry(
    initial=0.1,
    maximum=2.0,
    multiplier=1.5,
    timeout=PUBLISH_DEADLINE,
    predicate=if_exception_type(
        gexc.Aborted,
        gexc.Cancelled,
        gexc.DeadlineExceeded,
        gexc.InternalServerError,
        gexc.ResourceExhausted,
        gexc.ServiceUnavailable,
        gexc.Unknown,
    ),
)
PUBLISH_ATTEMPT_TIMEOUT = ConstantTimeout(10.0)
MAX_OUTSTANDING = 20_000  # handed to the client, not yet confirmed: send() waits beyond
SEND_WAIT = 10.0


def publisher_client(ch: grpc.Channel, ordering: bool = False) -> pubsub_v1.PublisherClient:
    return pubsub_v1.PublisherClient(
        batch_settings=BATCH,
        publisher_options=pubsub_v1.types.PublisherOptions(
            enable_message_ordering=ordering,
            retry=PUBLISH_RETRY,
            timeout=PUBLISH_ATTEMPT_TIMEOUT,
        ),
        transport=PublisherGrpcTransport(channel=ch),
    )


class PubsubProducer(ProducerClient):
    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        self._names = Names.of(spec)
        self._channel = channel(spec.endpoint, spec.admin)
        self._ordering = spec.options.ordering
        self._key_prefix = f"p{producer_id}-"
        self._keys = spec.recipe.partitions
        try:
            admin = Admin.over(self._channel)
            if not exists(admin, self._names):
                ensure(admin, spec, self._names)
            self._client = publisher_client(self._channel, self._ordering)
        except BaseException:
            self._channel.close()
            raise
        self._cond = threading.Condition()
        self._acks: list[Ack] = []
        self._outstanding = 0
        self._paused: set[str] = set()  # ordering keys the client stopped after a failure
        self._gone = False

    def send(self, batch: list[Outgoing]) -> None:
        if self._gone:
            raise BrokerError(
                "pubsub: the topic is gone (an emulator forgets everything when it restarts)"
            )
        self._resume()
        for msg in batch:
            with self._cond:
                if not self._cond.wait_for(lambda: self._outstanding < MAX_OUTSTANDING, SEND_WAIT):
                    raise BrokerError(
                        f"pubsub: {self._outstanding} messages unconfirmed for {SEND_WAIT:g}s"
                    )
                self._outstanding += 1
            key = f"{self._key_prefix}{msg.seq % self._keys}" if self._ordering else ""
            try:
                future = self._client.publish(self._names.topic, msg.payload, ordering_key=key)
            except RuntimeError as exc:  # the client was stopped
                with self._cond:
                    self._outstanding -= 1
                raise BrokerError(f"pubsub: {exc}") from exc
            future.add_done_callback(functools.partial(self._done, msg, key))

    def _done(self, msg: Outgoing, key: str, future: object) -> None:
        exc = future.exception()
        with self._cond:
            self._outstanding -= 1
            if exc is None:
                self._acks.append(Ack(msg.seq, msg.intended_ns, True))
            else:
                self._acks.append(Ack(msg.seq, msg.intended_ns, False, f"pubsub: {reason(exc)}"))
                self._gone = self._gone or gone(exc)
                if key:
                    self._paused.add(key)
            self._cond.notify_all()

    def _resume(self) -> None:
        with self._cond:
            keys, self._paused = self._paused, set()
        for key in keys:
            self._client.resume_publish(self._names.topic, key)

    def poll(self, timeout: float) -> list[Ack]:
        with self._cond:
            if not self._acks and timeout > 0:
                self._cond.wait(timeout)
            acks, self._acks = self._acks, []
        return acks

    def flush(self, timeout: float) -> list[Ack]:
        with self._cond:
            self._cond.wait_for(lambda: self._outstanding == 0, timeout)
            acks, self._acks = self._acks, []
        return acks

    def close(self) -> None:
        # stop() sends what is batched; the client's threads may go on retrying for up
        # to PUBLISH_DEADLINE (a broker that is down). The channel closes once they are
        # done: closed under them, they die with a traceback and leave futures unresolved.
        self._client.stop()
        threading.Thread(
            target=self._close_when_done, name="pubsub-producer-close", daemon=True
        ).start()

    def _close_when_done(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._outstanding == 0, PUBLISH_DEADLINE + SEND_WAIT)
        self._channel.close()
