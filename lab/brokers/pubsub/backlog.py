"""Counting what a subscription holds, the one way Pub/Sub's API allows: by pulling it.

Pub/Sub has no backlog count for clients: Google's service reports
num_undelivered_messages to Cloud Monitoring, a minute late, and the emulator has no
monitoring at all. So the probe says no depth while a run goes on, and the final probe
counts: it pulls until the subscription hands out nothing more, holding every message
(an unacked pull is invisible to everyone else until its deadline), then gives them all
back at once (a nack). On the main subscription it lifts the dead-letter policy while
it counts, so that counting is not a delivery attempt and no message is moved to the
dead-letter topic by being counted; putting the policy back restarts the emulator's
attempt counters, which is of no consequence once the run is over.

Pub-sub has a live count, per subscriber, that takes nothing from its consumers: a
snapshot of the subscriber's subscription holds its acknowledgement state (every
message not acked yet, held by a consumer or not), and seeking another subscription of
the same topic to it (the run's counter, which nobody consumes and which has no
dead-letter policy) gives that one the same backlog, which the probe counts by pulling
(what was published before the snapshot), then deletes the snapshot. The subscriber's
own messages are neither held nor attempted. It costs a pull per 100 messages (the
emulator hands out no more at once), so live counts stop at a limit and say None
beyond it.
"""

import contextlib
import warnings
from collections.abc import Iterable
from datetime import UTC, datetime

from google.api_core import exceptions as gexc
from google.protobuf import field_mask_pb2
from google.pubsub_v1 import ReceivedMessage
from google.pubsub_v1 import SubscriberClient as SubscriptionApi

from lab.brokers.contract import BrokerError
from lab.brokers.pubsub.connection import reason
from lab.brokers.pubsub.resources import ADMIN_RETRY, CALL_TIMEOUT

# A pull that waits for messages on an empty subscription returns only at its deadline:
# counting needs the immediate answer that the (deprecated) flag still gives.
warnings.filterwarnings(
    "ignore", message="The return_immediately flag is deprecated", category=DeprecationWarning
)

PULL_MAX = 1000  # the API's limit per pull (the emulator hands out at most 100)
HOLD_S = 60  # how long pulled messages stay held while they are counted or browsed
ACK_CHUNK = 1000  # ack ids per acknowledge / modifyAckDeadline request


class Held:
    """Every message a subscription hands out now (up to `limit`), held until release()
    gives back those that ack() did not take."""

    def __init__(self, api: SubscriptionApi, subscription: str, limit: int | None = None) -> None:
        self.api = api
        self.subscription = subscription
        self._held: dict[str, ReceivedMessage] = {}  # by message id
        try:
            self._pull(limit)
        except BaseException:
            self.release()
            raise

    def _pull(self, limit: int | None) -> None:
        while limit is None or len(self._held) < limit:
            want = PULL_MAX if limit is None else min(PULL_MAX, limit - len(self._held))
            got = self._call(
                self.api.pull,
                request={
                    "subscription": self.subscription,
                    "max_messages": want,
                    "return_immediately": True,
                },
            ).received_messages
            # A message seen twice came back after its hold expired: nothing new is left.
            new = [m for m in got if m.message.message_id not in self._held]
            if not new:
                return
            self._held.update((m.message.message_id, m) for m in new)
            self._deadline([m.ack_id for m in new], HOLD_S)

    @property
    def messages(self) -> list[ReceivedMessage]:
        return list(self._held.values())

    def __len__(self) -> int:
        return len(self._held)

    def ack(self, messages: Iterable[ReceivedMessage]) -> None:
        taken = [self._held.pop(m.message.message_id) for m in messages]
        ids = [m.ack_id for m in taken]
        for i in range(0, len(ids), ACK_CHUNK):
            self._call(
                self.api.acknowledge,
                request={"subscription": self.subscription, "ack_ids": ids[i : i + ACK_CHUNK]},
            )

    def release(self) -> None:
        """Give back what is still held; a failure here only delays its redelivery."""
        ids, self._held = [m.ack_id for m in self._held.values()], {}
        with contextlib.suppress(BrokerError):
            self._deadline(ids, 0)

    def _deadline(self, ack_ids: list[str], seconds: int) -> None:
        for i in range(0, len(ack_ids), ACK_CHUNK):
            self._call(
                self.api.modify_ack_deadline,
                request={
                    "subscription": self.subscription,
                    "ack_ids": ack_ids[i : i + ACK_CHUNK],
                    "ack_deadline_seconds": seconds,
                },
            )

    def _call(self, method: object, request: dict) -> object:
        try:
            return method(request=request, retry=ADMIN_RETRY, timeout=CALL_TIMEOUT)
        except gexc.GoogleAPIError as exc:
            raise BrokerError(f"pubsub: {reason(exc)}") from exc

    def __enter__(self) -> "Held":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def count(api: SubscriptionApi, subscription: str) -> int:
    with Held(api, subscription) as held:
        return len(held)


def count_up_to(api: SubscriptionApi, subscription: str, limit: int) -> int | None:
    """How many messages the subscription holds; None when there are more than `limit`."""
    with Held(api, subscription, limit + 1) as held:
        return len(held) if len(held) <= limit else None


def count_backlog(api: SubscriptionApi, subscription: str) -> int:
    """The main subscription's backlog, counted with its dead-letter policy lifted."""
    try:
        policy = api.get_subscription(
            subscription=subscription, retry=ADMIN_RETRY, timeout=CALL_TIMEOUT
        ).dead_letter_policy
    except gexc.GoogleAPIError as exc:
        raise BrokerError(f"pubsub: {reason(exc)}") from exc
    lifted = bool(policy.dead_letter_topic)
    if lifted:
        _set_policy(api, subscription, None)
    try:
        return count(api, subscription)
    finally:
        if lifted:
            _set_policy(api, subscription, policy)


def count_from_snapshot(
    api: SubscriptionApi, subscription: str, counter: str, snapshot: str, limit: int
) -> int | None:
    """The backlog of `subscription` (None above `limit`), counted on `counter`."""
    try:
        try:
            api.create_snapshot(
                request={"name": snapshot, "subscription": subscription},
                retry=ADMIN_RETRY,
                timeout=CALL_TIMEOUT,
            )
        except gexc.AlreadyExists:  # left by a count that failed half-way
            api.delete_snapshot(snapshot=snapshot, retry=ADMIN_RETRY, timeout=CALL_TIMEOUT)
            api.create_snapshot(
                request={"name": snapshot, "subscription": subscription},
                retry=ADMIN_RETRY,
                timeout=CALL_TIMEOUT,
            )
        try:
            api.seek(
                request={"subscription": counter, "snapshot": snapshot},
                retry=ADMIN_RETRY,
                timeout=CALL_TIMEOUT,
            )
        finally:
            api.delete_snapshot(snapshot=snapshot, retry=ADMIN_RETRY, timeout=CALL_TIMEOUT)
    except gexc.GoogleAPIError as exc:
        raise BrokerError(f"pubsub: snapshot of {subscription}: {reason(exc)}") from exc
    # The counter has everything published since, too: count what came before the
    # snapshot (by the publish times of the server, on the emulator this host's clock).
    # The pulls come oldest first, so one that brings nothing older ends the count, even
    # while producers go on publishing. What is pulled is neither acked nor given back:
    # the next seek sets the counter's state again, and its ack deadline outlasts a count.
    cutoff = datetime.now(UTC)
    seen: set[str] = set()
    request = {"subscription": counter, "max_messages": PULL_MAX, "return_immediately": True}
    while len(seen) <= limit:
        try:
            got = api.pull(request=request, retry=ADMIN_RETRY, timeout=CALL_TIMEOUT)
        except gexc.GoogleAPIError as exc:
            raise BrokerError(f"pubsub: counting {subscription}: {reason(exc)}") from exc
        new = {
            m.message.message_id
            for m in got.received_messages
            if m.message.publish_time <= cutoff and m.message.message_id not in seen
        }
        if not new:
            return len(seen)
        seen |= new
    return None


def _set_policy(api: SubscriptionApi, subscription: str, policy: object) -> None:
    try:
        api.update_subscription(
            request={
                "subscription": {"name": subscription, "dead_letter_policy": policy},
                "update_mask": field_mask_pb2.FieldMask(paths=["dead_letter_policy"]),
            },
            retry=ADMIN_RETRY,
            timeout=CALL_TIMEOUT,
        )
    except gexc.GoogleAPIError as exc:
        raise BrokerError(f"pubsub: changing the dead-letter policy: {reason(exc)}") from exc
