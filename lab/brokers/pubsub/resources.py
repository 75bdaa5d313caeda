"""A run's Pub/Sub resources: made by provision, and again by a producer that finds them
gone (an emulator forgets every topic and subscription when it restarts).

    topic  lab-<run>          subscription  lab-<run>-consumers  (the consumer group)
    topic  lab-<run>.dlq      subscription  lab-<run>.dlq        (keeps the dead letters)

Pub-sub: a subscription per subscriber, lab-<run>-<subscriber>, each with the same
dead-letter policy (the dead-letter topic is shared: the server records the source
subscription of each message it moves), and lab-<run>.backlog, which nobody consumes:
the probe seeks it to a subscriber's snapshot to count that subscriber's backlog
(backlog.py). Request-reply: a topic lab-<run>.reply-<requester> per requester, and a
subscription of the same name that only that requester reads.

A main subscription's dead-letter policy sends a message to the dead-letter topic once
it has been delivered max_delivery_attempts times; Pub/Sub allows 5 to 100. Its
message_retention_duration is the recipe's max_age within Pub/Sub's bounds (10 minutes
to 7 days); Pub/Sub has no limit by count or size.
"""

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.protobuf import duration_pb2
from google.pubsub_v1 import PublisherClient as TopicApi
from google.pubsub_v1 import SubscriberClient as SubscriptionApi
from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

from lab.brokers.contract import BrokerError, RunSpec
from lab.brokers.pubsub.connection import Names, channel, reason
from lab.recipes.model import Recipe

MIN_POLICY_ATTEMPTS = 5  # Pub/Sub's bounds for max_delivery_attempts
MAX_POLICY_ATTEMPTS = 100
MIN_RETENTION_S = 600
MAX_RETENTION_S = 7 * 24 * 3600
DLQ_ACK_DEADLINE = 60  # browsing holds the dead letters while it sorts them
CALL_TIMEOUT = 10.0
# Admin calls retry while the server is unreachable, briefly: a broker that stays down
# is the worker's business, which reconnects with its own backoff.
ADMIN_RETRY = Retry(
    initial=0.1,
    maximum=1.0,
    multiplier=2.0,
    timeout=10.0,
    predicate=if_exception_type(gexc.ServiceUnavailable, gexc.DeadlineExceeded),
)


@dataclass
class Admin:
    """The unbatched API clients of one channel: topics and subscriptions."""

    channel: grpc.Channel
    topics: TopicApi
    subscriptions: SubscriptionApi

    @classmethod
    def over(cls, ch: grpc.Channel) -> "Admin":
        return cls(
            ch,
            TopicApi(transport=PublisherGrpcTransport(channel=ch)),
            SubscriptionApi(transport=SubscriberGrpcTransport(channel=ch)),
        )

    @classmethod
    def connect(cls, spec: RunSpec) -> "Admin":
        """Straight to the server, past any chaos proxy: the engine's own calls."""
        return cls.over(channel(spec.admin))

    def close(self) -> None:
        self.channel.close()


def policy_attempts(recipe: Recipe) -> int:
    return min(max(recipe.max_attempts, MIN_POLICY_ATTEMPTS), MAX_POLICY_ATTEMPTS)


def retention_seconds(recipe: Recipe) -> int | None:
    """The subscription's message_retention_duration, or None for Pub/Sub's default."""
    age = recipe.retention.max_age
    if not age:
        return None
    return int(min(max(age, MIN_RETENTION_S), MAX_RETENTION_S))


def dead_letter_policy(spec: RunSpec, names: Names) -> dict:
    return {
        "dead_letter_topic": names.dlq_topic,
        "max_delivery_attempts": policy_attempts(spec.recipe),
    }


def subscription_request(spec: RunSpec, names: Names, subscription: str) -> dict:
    request = {
        "name": subscription,
        "topic": names.topic,
        "ack_deadline_seconds": int(spec.options.ack_deadline),
        "dead_letter_policy": dead_letter_policy(spec, names),
        "enable_message_ordering": spec.options.ordering,
    }
    retention = retention_seconds(spec.recipe)
    if retention:
        request["message_retention_duration"] = duration_pb2.Duration(seconds=retention)
    return request


def ensure(admin: Admin, spec: RunSpec, names: Names) -> None:
    """Create what is missing, in an order that never lets a message be published
    while a subscription that should keep it is missing: the main subscriptions last,
    as the existence of the last one is what producers check."""
    plain = int(spec.options.ack_deadline)
    steps = [
        (admin.topics.create_topic, {"name": names.topic}),
        (admin.topics.create_topic, {"name": names.dlq_topic}),
        (
            admin.subscriptions.create_subscription,
            {
                "name": names.dlq_subscription,
                "topic": names.dlq_topic,
                "ack_deadline_seconds": DLQ_ACK_DEADLINE,
            },
        ),
    ]
    for topic, sub in zip(names.reply_topics, names.reply_subscriptions, strict=True):
        steps.append((admin.topics.create_topic, {"name": topic}))
        request = {"name": sub, "topic": topic, "ack_deadline_seconds": plain}
        steps.append((admin.subscriptions.create_subscription, request))
    if names.counter:
        # No dead-letter policy: the probe's pulls there count as nobody's attempts.
        request = {"name": names.counter, "topic": names.topic, "ack_deadline_seconds": plain}
        steps.append((admin.subscriptions.create_subscription, request))
    for sub in names.subscriptions.values():
        request = subscription_request(spec, names, sub)
        steps.append((admin.subscriptions.create_subscription, request))
    for create, request in steps:
        try:
            create(request=request, retry=ADMIN_RETRY, timeout=CALL_TIMEOUT)
        except gexc.AlreadyExists:
            pass
        except gexc.GoogleAPIError as exc:
            raise BrokerError(f"pubsub: creating {request['name']}: {reason(exc)}") from exc


def exists(admin: Admin, names: Names) -> bool:
    """Whether the run's last subscription exists: provision and ensure() make it last."""
    last = list(names.subscriptions.values())[-1]
    try:
        admin.subscriptions.get_subscription(
            subscription=last, retry=ADMIN_RETRY, timeout=CALL_TIMEOUT
        )
    except gexc.NotFound:
        return False
    except gexc.GoogleAPIError as exc:
        raise BrokerError(f"pubsub: {reason(exc)}") from exc
    return True


def delete(admin: Admin, names: Names) -> None:
    """Delete the run's resources; gone already is fine."""
    if names.snapshot:  # left by a probe that failed half-way
        _ignore_missing(admin.subscriptions.delete_snapshot, snapshot=names.snapshot)
    subs = [*names.subscriptions.values(), names.dlq_subscription, *names.reply_subscriptions]
    if names.counter:
        subs.append(names.counter)
    for sub in subs:
        _ignore_missing(admin.subscriptions.delete_subscription, subscription=sub)
    for topic in (names.topic, names.dlq_topic, *names.reply_topics):
        _ignore_missing(admin.topics.delete_topic, topic=topic)


def _ignore_missing(call: Callable[..., object], **kwargs: str) -> None:
    try:
        call(**kwargs, retry=ADMIN_RETRY, timeout=CALL_TIMEOUT)
    except gexc.NotFound:
        pass
    except gexc.GoogleAPIError as exc:
        raise BrokerError(f"pubsub: deleting {next(iter(kwargs.values()))}: {reason(exc)}") from exc
