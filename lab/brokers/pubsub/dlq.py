"""Pub/Sub's dead letters: two ways into the dead-letter topic, one way out.

The emulator honours a subscription's dead-letter policy: once a message has been
delivered max_delivery_attempts times and is nacked again, the server publishes it to
the dead-letter topic with CloudPubSubDeadLetter* attributes (the delivery count, the
source subscription, the original publish time) and drops it from the subscription,
in one step. Pub/Sub allows 5 to 100 attempts. So:

- a delivery whose attempt count has reached the policy's limit is dead-lettered by a
  nack, and the server moves it (it records no reason, and no first failure);
- below the limit (a recipe's max_attempts under 5, such as poison-pill's 3) the
  consumer publishes the message to the dead-letter topic itself with x-lab-*
  attributes (reason, attempts, first and last failure), waits until the server has
  it, and only then acks the original, as the Kafka adapter does.

The subscription `lab-<run>.dlq` on the dead-letter topic keeps both kinds until they
are redriven or torn down. Browsing holds them (see backlog.py) and gives them back;
redrive re-publishes each to the main topic without its attributes (attempts start
again) and acks it on the dead-letter subscription once the main topic has it.

The emulator keeps all of it in memory: after it restarted, a kept run's dead-letter
subscription does not exist, and browse and redrive say that those dead letters are gone
rather than that the broker did not answer.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.pubsub_v1 import ReceivedMessage
from google.pubsub_v1 import SubscriberClient as SubscriptionApi

from lab.brokers.contract import BrokerError, DeadLetter, DeadLetterInfo, dead_letter_of
from lab.brokers.pubsub.backlog import Held
from lab.brokers.pubsub.connection import Names, gone, reason
from lab.errors import LabError

REASON = "x-lab-reason"
ATTEMPTS = "x-lab-attempts"
FIRST_FAILURE = "x-lab-first-failure"
LAST_FAILURE = "x-lab-last-failure"
# What the server's dead-letter policy adds.
SOURCE_ATTEMPTS = "CloudPubSubDeadLetterSourceDeliveryCount"
POLICY_REASON = "the subscription's dead-letter policy: max_delivery_attempts reached"
PUBLISH_TIMEOUT = 30.0
REDRIVE_CHUNK = 1000


def attributes(info: DeadLetterInfo) -> dict[str, str]:
    return {
        REASON: info.reason,
        ATTEMPTS: str(info.attempts),
        FIRST_FAILURE: repr(info.first_failure),
        LAST_FAILURE: repr(info.last_failure),
    }


def publish(publisher: pubsub_v1.PublisherClient, topic: str, items: list) -> None:
    """Publish (data, attributes) pairs and wait until the server has every one;
    BrokerError if it does not (some may be stored nonetheless)."""
    futures = [publisher.publish(topic, data, **attrs) for data, attrs in items]
    for future in futures:
        try:
            future.result(timeout=PUBLISH_TIMEOUT)
        except gexc.GoogleAPIError as exc:
            raise BrokerError(f"pubsub: publishing to {topic}: {reason(exc)}") from exc
        except TimeoutError:
            raise BrokerError(
                f"pubsub: {topic} did not confirm within {PUBLISH_TIMEOUT:g}s"
            ) from None


def _letter(m: ReceivedMessage, run_id: str) -> DeadLetter:
    attrs = m.message.attributes
    moved = _unix(m.message.publish_time)
    if REASON in attrs:
        first = float(attrs.get(FIRST_FAILURE, moved))
        return dead_letter_of(
            m.message.message_id,
            run_id,
            m.message.data,
            attrs[REASON],
            int(attrs.get(ATTEMPTS, 0)),
            first,
            float(attrs.get(LAST_FAILURE, first)),
        )
    # The policy's: the only time it records is when it moved the message.
    return dead_letter_of(
        m.message.message_id,
        run_id,
        m.message.data,
        POLICY_REASON,
        int(attrs.get(SOURCE_ATTEMPTS, 0)),
        moved,
        moved,
    )


def _unix(when: object) -> float:
    return when.timestamp() if isinstance(when, datetime) else 0.0


@contextmanager
def _kept(names: Names) -> Iterator[None]:
    """A dead-letter subscription that does not exist: one line saying where the dead
    letters went, and how to forget the run (its entry in the lab's state dir)."""
    try:
        yield
    except BrokerError as exc:
        if not gone(exc.__cause__):
            raise
        forget = f"`lab dlq pubsub --run {names.run_id} --purge` forgets the run"
        if names.service:
            raise LabError(
                f"pubsub: the dead letters of run {names.run_id} are gone: their "
                f"subscription {names.dlq_subscription} was deleted; {forget}"
            ) from None
        # `lab run` stops the brokers it started, so a stop is as likely as a restart.
        raise LabError(
            f"pubsub: the Pub/Sub emulator keeps everything in memory and lost the dead "
            f"letters of run {names.run_id} when it stopped or restarted (`lab run "
            f"--keep-brokers` keeps it running); {forget}"
        ) from None


def browse(api: SubscriptionApi, names: Names, run_id: str, limit: int) -> list[DeadLetter]:
    """Up to `limit` dead letters, oldest first (by when they reached the dead-letter
    topic); all of them are held while they are sorted, then given back."""
    with _kept(names), Held(api, names.dlq_subscription) as held:
        oldest = sorted(held.messages, key=lambda m: (_unix(m.message.publish_time), m.ack_id))
        return [_letter(m, run_id) for m in oldest[:limit]]


def redrive(api: SubscriptionApi, publisher: pubsub_v1.PublisherClient, names: Names) -> int:
    moved = 0
    while True:
        with _kept(names), Held(api, names.dlq_subscription, REDRIVE_CHUNK) as held:
            if not held:
                return moved
            letters = held.messages
            publish(publisher, names.topic, [(m.message.data, {}) for m in letters])
            held.ack(letters)
            moved += len(letters)
