"""Google Cloud Pub/Sub: a topic per run, one subscription as the consumer group (pub-sub:
one per subscriber, each subscriber's consumers pulling their own).

Producers publish with the client's batching (producer.py); consumers hold a streaming
pull each (consumer.py). Reject is a nack, and the server counts delivery_attempt, which the
dead-letter policy needs and the lab reads as attempts (dlq.py). Resources, retention
and their bounds: resources.py. The probe: backlog.py says why Pub/Sub gives no depth
while a run goes on (except per subscriber in pub-sub, from snapshots), and how the
final probe counts it.
"""

import importlib.metadata

from lab.brokers.contract import (
    BrokerAdapter,
    BrokerError,
    ConsumerClient,
    DeadLetter,
    Probe,
    ProducerClient,
    RunSpec,
)
from lab.brokers.pubsub import backlog, dlq, resources
from lab.brokers.pubsub.connection import Names, is_service
from lab.brokers.pubsub.consumer import StreamingConsumer, SynchronousConsumer
from lab.brokers.pubsub.producer import BATCH, PubsubProducer, publisher_client
from lab.brokers.pubsub.replies import (
    CORRELATION,
    REPLY_POLL_S,
    PubsubReplyReceiver,
    PubsubReplySender,
)
from lab.brokers.pubsub.resources import Admin

# Live probes count dead letters exactly up to this many; beyond, only the final probe.
LIVE_DLQ_LIMIT = 1000
# Pub-sub's live backlog counts, per subscriber: 20 pulls of the emulator's 100 at most.
LIVE_BACKLOG_LIMIT = 2000


class PubsubAdapter(BrokerAdapter):
    name = "pubsub"

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._admin: Admin | None = None
        self._names: Names | None = None

    @property
    def admin(self) -> Admin:
        if self._admin is None:
            self._admin = Admin.connect(self.spec)
        return self._admin

    @property
    def names(self) -> Names:
        if self._names is None:
            self._names = Names.of(self.spec)
        return self._names

    def provision(self) -> None:
        resources.ensure(self.admin, self.spec, self.names)

    def losses_expected(self) -> str | None:
        # Whatever the durability: the emulator holds everything in memory, where the
        # service stores every acknowledged message durably across zones.
        return "cannot hold on the Pub/Sub emulator: it keeps messages in memory only"

    def probe(self, final: bool = False) -> Probe:
        api, names = self.admin.subscriptions, self.names
        if not resources.exists(self.admin, names):
            # An emulator that restarted holds nothing of the run until a producer
            # creates the subscriptions again.
            return Probe(depth=0 if final else None, detail={"subscription": "gone"})
        pub_sub = self.spec.recipe.pattern == "pub-sub"
        depths: dict[str, int | None] = {}
        try:
            if final:
                for sub, path in names.subscriptions.items():
                    depths[sub] = backlog.count_backlog(api, path)
                dead = backlog.count(api, names.dlq_subscription)
            else:
                if pub_sub:
                    for sub, path in names.subscriptions.items():
                        depths[sub] = backlog.count_from_snapshot(
                            api, path, names.counter, names.snapshot, LIVE_BACKLOG_LIMIT
                        )
                dead = backlog.count_up_to(api, names.dlq_subscription, LIVE_DLQ_LIMIT)
        except BrokerError:
            if final:
                raise
            return Probe(depth=None)
        known = {sub: n for sub, n in depths.items() if n is not None}
        depth = sum(known.values()) if depths and len(known) == len(depths) else None
        return Probe(
            depth=depth,
            dead_letters=dead,
            subscriber_depths=known if pub_sub else {},
        )

    def teardown(self, keep_dead_letters: bool = False) -> None:
        if keep_dead_letters:
            try:
                if backlog.count(self.admin.subscriptions, self.names.dlq_subscription):
                    return
            except BrokerError:
                pass  # no dead-letter subscription: nothing worth keeping
        resources.delete(self.admin, self.names)

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        return dlq.browse(self.admin.subscriptions, self.names, self.spec.run_id, limit)

    def redrive(self) -> int:
        publisher = publisher_client(self.admin.channel)
        try:
            return dlq.redrive(self.admin.subscriptions, publisher, self.names)
        finally:
            publisher.stop()

    def settings(self) -> dict[str, str]:
        recipe, options = self.spec.recipe, self.spec.options
        attempts = resources.policy_attempts(recipe)
        where = "Google's service" if is_service(self.spec.admin) else "the emulator"
        out = {
            "server": where,
            "durability": (
                "none on the emulator, whatever the profile ('safe' and 'fast' run alike): "
                "it keeps every message, topic and subscription in memory only, and a kill "
                "or restart loses them all (producers create the topic and subscriptions "
                "again). Google's service stores a message in several zones before it acks "
                "the publish, also whatever the profile"
            ),
            "topic": f"{self.spec.queue}; dead letters: {self.spec.dead_letter_queue}",
            "subscription": (
                f"{', '.join(self.spec.group_of(s) for s in self.spec.subscribers)}: "
                f"ack deadline {options.ack_deadline:g}s, "
                f"message ordering {'on' if options.ordering else 'off'}"
            ),
            "publisher": (
                f"batches of up to {BATCH.max_messages} messages, {BATCH.max_bytes} B or "
                f"{BATCH.max_latency * 1000:g} ms; acks from the publish futures"
            ),
            "subscriber": self._subscriber_settings(),
            "ordering": (
                f"ordering keys p<producer>-<n>, n = sequence mod {recipe.partitions}"
                if options.ordering
                else "none (no ordering keys)"
            ),
            "reject": "nack (modifyAckDeadline 0): redelivered at once, delivery_attempt + 1",
            "dead_letters": self._dead_letter_settings(attempts),
            "retention": self._retention_settings(),
            "backlog": self._backlog_settings(),
            "emulator_limits": (
                "the emulator does not persist anything, expire messages "
                "(message_retention_duration is stored, never applied), apply a stream's "
                "flow control or ack deadline (max_outstanding_messages, "
                "stream_ack_deadline_seconds), end a stream that was cancelled or cut off, "
                "check IAM, or report metrics; its dead-letter policy, delivery_attempt, "
                "ordering keys, seek and subscription ack deadlines behave as the service's"
            ),
        }
        if recipe.request_reply:
            out["replies"] = (
                f"topic and subscription {self.spec.reply_to(0)} (one per requester, "
                f"made at provision): the responder publishes each batch's replies to a "
                f"requester in one unary Publish, attribute {CORRELATION} = "
                "<requester>-<sequence>, before it acks the requests; the requester "
                f"pulls every {REPLY_POLL_S * 1000:g} ms while it waits (return_immediately: "
                "a pull held by the emulator looks only every 50 ms) and acks on its next "
                "pull"
            )
        return out

    def _backlog_settings(self) -> str:
        final = (
            "the final probe counts it by pulling every message, with the dead-letter "
            "policy lifted meanwhile"
        )
        if self.spec.recipe.pattern != "pub-sub":
            return (
                "not reported while running: Pub/Sub's API has no backlog count (the service "
                "reports num_undelivered_messages to Cloud Monitoring only, and the "
                f"emulator has no monitoring); {final}"
            )
        return (
            "per subscriber, twice a second: a snapshot of its subscription, which "
            f"{self.spec.queue}.backlog (consumed by nobody) is seeked to and counted by "
            f"pulling, up to {LIVE_BACKLOG_LIMIT:,} (beyond: not known until the end); "
            "the subscriber's own messages are neither held nor attempted (Pub/Sub's API "
            "has no backlog count, and the emulator no Cloud Monitoring); " + final
        )

    def _subscriber_settings(self) -> str:
        acks = "acks and nacks are unary calls, confirmed by the server when they return"
        if self.spec.options.pull == "synchronous":
            return f"synchronous pull (Pull calls of up to prefetch messages); {acks}"
        return (
            f"streaming pull, max_outstanding_messages = prefetch "
            f"({self.spec.recipe.consumers.prefetch}), which the emulator ignores (it pushes "
            "all it has; the consumer holds it); leases extended by the ack deadline; "
            f"{acks}; on the emulator a stream that ends abruptly (a consumer crash, a "
            "reset) keeps its messages for several ack deadlines: pull = 'synchronous' "
            "for consumer faults"
        )

    def _dead_letter_settings(self, attempts: int) -> str:
        policy = (
            f"subscription dead-letter policy: max_delivery_attempts = {attempts} "
            f"(Pub/Sub allows {resources.MIN_POLICY_ATTEMPTS} to {resources.MAX_POLICY_ATTEMPTS})"
        )
        wanted = self.spec.recipe.max_attempts
        if wanted >= resources.MIN_POLICY_ATTEMPTS:
            how = "a message that fails its last attempt is nacked and the server moves it"
        else:
            how = (
                f"max_attempts = {wanted} is below the policy's minimum, so the consumer "
                f"publishes the message to {self.spec.dead_letter_queue} itself (x-lab-* "
                "attributes), then acks it; the policy only catches messages delivered "
                f"{attempts} times without an answer (consumers that crashed)"
            )
        return f"{policy}; {how}; kept by subscription {self.spec.dead_letter_queue}"

    def _retention_settings(self) -> str:
        r = self.spec.recipe.retention
        parts = []
        seconds = resources.retention_seconds(self.spec.recipe)
        if seconds:
            bound = "minimum" if r.max_age < seconds else "maximum"
            moved = "" if seconds == r.max_age else f" (Pub/Sub's {bound}; max_age {r.max_age:g}s)"
            parts.append(f"message_retention_duration = {seconds}s{moved}")
        else:
            parts.append("message_retention_duration: Pub/Sub's default, 7 days")
        if r.max_messages or r.max_bytes:
            parts.append("max_messages / max_bytes not applied: Pub/Sub has no such limit")
        parts.append(
            f"Pub/Sub keeps {resources.MIN_RETENTION_S}s to {resources.MAX_RETENTION_S}s; "
            "the emulator never expires a message"
        )
        return "; ".join(parts)

    def client_version(self) -> str:
        return f"google-cloud-pubsub {importlib.metadata.version('google-cloud-pubsub')}"

    def producer(self, producer_id: int) -> ProducerClient:
        return PubsubProducer(self.spec, producer_id)

    def consumer(self, consumer_id: int) -> ConsumerClient:
        if self.spec.options.pull == "synchronous":
            return SynchronousConsumer(self.spec, consumer_id)
        return StreamingConsumer(self.spec, consumer_id)

    def replier(self, consumer_id: int) -> PubsubReplySender:
        return PubsubReplySender(self.spec)

    def replies(self, producer_id: int) -> PubsubReplyReceiver:
        return PubsubReplyReceiver(self.spec, producer_id)

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
