"""RabbitMQ: provisioning, probes, teardown and dead letters of a run's queue.

A durable work queue fed through the default exchange; pub-sub: a durable fanout
exchange named like the run's queue, with a durable queue per subscriber bound to it.
The clients are in clients.py, their connections in amqp.py, request-reply's direct
reply-to in replies.py. Retention, dead letters and retries by republishing live in
dlq.py.
"""

import pika
from pika import frame

from lab.brokers.contract import (
    BrokerAdapter,
    BrokerError,
    ConsumerClient,
    DeadLetter,
    Probe,
    ProducerClient,
    RunSpec,
)
from lab.brokers.rabbitmq import dlq as rdlq
from lab.brokers.rabbitmq import settings as rsettings
from lab.brokers.rabbitmq.amqp import CONNECT_TIMEOUT, PROBE_TIMEOUT, SETUP_TIMEOUT, Session
from lab.brokers.rabbitmq.clients import RabbitMQConsumer, RabbitMQProducer
from lab.brokers.rabbitmq.replies import DirectReplies, DirectReplySender


class RabbitMQAdapter(BrokerAdapter):
    name = "rabbitmq"

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._admin: Session | None = None
        options = self.spec.options
        self._quorum = options.queue_type == "quorum"
        recipe = self.spec.recipe
        # Fire-and-forget: transient messages, no publisher confirms.
        self._persistent = recipe.durability == "safe" and not recipe.forget
        # Only a run with a retention limit has a `.dropped` queue to drain.
        self._drain = (
            rdlq.DropDrain(spec, self._connect) if rdlq.has_retention(spec.recipe) else None
        )
        self._pub_sub = recipe.pattern == "pub-sub"
        # In a worker: the clients this adapter made, by id, for request-reply, whose
        # replies travel on the requester's producer channel and the responder's
        # consumer knows the reply addresses (replies.py).
        self._requesters: dict[int, RabbitMQProducer] = {}
        self._responders: dict[int, RabbitMQConsumer] = {}

    def _queues(self) -> list[str]:
        """The queues consumers read: the run's, or one per subscriber (pub-sub)."""
        if not self._pub_sub:
            return [self.spec.queue]
        return [self.spec.group_of(sub) for sub in self.spec.subscribers]

    def _admin_call(self, timeout: float, name: str, *args: object, **kw: object) -> frame.Method:
        """An AMQP method on the engine's one session, opened again if it died since the
        last call (a killed or restarted broker, an idle connection it dropped)."""
        session = self._admin
        if session is not None:
            try:
                session.pump(0)
            except BrokerError:
                session.close()
                session = self._admin = None
        if session is None:
            session = self._admin = Session(self.spec.admin, min(timeout, CONNECT_TIMEOUT))
        try:
            return session.call(timeout, getattr(session.channel, name), *args, **kw)
        except BrokerError:
            # An unanswered or refused call leaves the channel in doubt: start afresh.
            session.close()
            self._admin = None
            raise

    def _connect(self) -> Session:
        return Session(self.spec.admin)

    def provision(self) -> None:
        spec = self.spec
        queue_type = "quorum" if self._quorum else "classic"
        # The destinations first, so the main queue never dead-letters into nothing.
        # `.dropped` is of the main queue's type, so a quorum run keeps its losses in a
        # replicated log like its messages. The DLQ is always classic: browsing returns
        # messages to the queue, and a classic queue puts them back where they were, while
        # a quorum queue (3.10) puts them behind the ones it never handed out.
        queues = [(spec.dead_letter_queue, {"x-queue-type": "classic"})]
        if self._drain is not None:
            queues.append((rdlq.dropped_queue(spec), {"x-queue-type": queue_type}))
        main = rdlq.queue_arguments(spec, queue_type)
        queues += [(name, main) for name in self._queues()]
        for name, arguments in queues:
            self._admin_call(
                SETUP_TIMEOUT, "queue_declare", name, durable=True, arguments=arguments
            )
        if self._pub_sub:
            self._admin_call(SETUP_TIMEOUT, "exchange_declare", spec.queue, "fanout", durable=True)
            for name in self._queues():
                self._admin_call(SETUP_TIMEOUT, "queue_bind", name, spec.queue)

    def probe(self, final: bool = False) -> Probe:
        timeout = SETUP_TIMEOUT if final else PROBE_TIMEOUT
        # By subscriber ("" outside pub-sub): each queue's counts, as the broker says.
        declared = {
            sub: self._admin_call(timeout, "queue_declare", name, passive=True).method
            for sub, name in zip(self.spec.subscribers, self._queues(), strict=True)
        }
        dlq = self._admin_call(timeout, "queue_declare", self.spec.dead_letter_queue, passive=True)
        detail: dict = {"consumers": sum(q.consumer_count for q in declared.values())}
        dropped, retention_dropped = b"", None
        if self._drain is not None:
            # Last: once the drain acked its messages, nothing may fail before they are
            # handed to the engine.
            try:
                dropped = self._drain.take(final)
                retention_dropped = self._drain.total
                detail["dropped_by_reason"] = dict(self._drain.reasons)
            except BrokerError as exc:
                if "NOT_FOUND" not in str(exc):
                    raise
                # `.dropped` is gone: a run torn down with its dead letters kept.
                detail["dropped_queue"] = "missing"
        # Ready messages only: AMQP does not report those delivered and not yet acked.
        depths = {sub: q.message_count for sub, q in declared.items()}
        return Probe(
            depth=sum(depths.values()),
            subscriber_depths=depths if self._pub_sub else {},
            dead_letters=dlq.method.message_count,
            retention_dropped=retention_dropped,
            dropped=dropped,
            detail=detail,
        )

    def teardown(self, keep_dead_letters: bool = False) -> None:
        if self._drain is not None:
            self._drain.close()
        spec = self.spec
        self._admin_call(SETUP_TIMEOUT, "queue_delete", rdlq.dropped_queue(spec))
        if not keep_dead_letters:
            for name in self._queues():
                self._admin_call(SETUP_TIMEOUT, "queue_delete", name)
            if self._pub_sub:
                self._admin_call(SETUP_TIMEOUT, "exchange_delete", spec.queue)
            self._admin_call(SETUP_TIMEOUT, "queue_delete", spec.dead_letter_queue)

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        # A session of its own: closing it is what puts the browsed messages back.
        session = self._connect()
        try:
            return rdlq.browse(session, self.spec, limit)
        finally:
            session.close()

    def redrive(self) -> int:
        session = self._connect()
        try:
            return rdlq.redrive(session, self.spec, self._persistent)
        finally:
            session.close()

    def settings(self) -> dict[str, str]:
        recipe = self.spec.recipe
        mode = "2 (persistent)" if self._persistent else "1 (transient)"
        if self._quorum:
            mode += "; quorum queues persist every message whatever the mode"
        return {
            "queue_type": self.spec.options.queue_type,
            "queue_durable": "true",
            "delivery_mode": mode,
            "publisher_confirms": f"window of {self.spec.options.confirm_window}",
            "consumer_acks": "manual",
            "prefetch": str(recipe.consumers.prefetch),
            **rdlq.settings(self.spec, self._quorum),
            **self._pattern_settings(),
        }

    def _pattern_settings(self) -> dict[str, str]:
        spec = self.spec
        if self._pub_sub:
            return {
                "exchange": f"{spec.queue} (fanout, durable); mandatory publishes, so a"
                " message no queue took is returned and not acked",
                "subscriber_queues": ", ".join(self._queues()) + " (durable, one each)",
                "subscriber_dead_letters": f"all in {spec.dead_letter_queue}: the probe has"
                " one dead-letter count per run",
            }
        if spec.recipe.request_reply:
            return {
                "reply_to": "amq.rabbitmq.reply-to (direct reply-to) on each requester's"
                " producer channel, no-ack; replies published transient with confirms,"
                " without mandatory",
            }
        return {}

    def read_settings(self) -> dict[str, str]:
        return rsettings.read_settings(self.spec, self._queues()[0])

    def producer(self, producer_id: int) -> ProducerClient:
        spec = self.spec
        window = 0 if spec.recipe.forget else spec.options.confirm_window
        # Pub-sub: the fanout exchange, which ignores the routing key.
        exchange, key = (spec.queue, "") if self._pub_sub else ("", spec.queue)
        requester = spec.recipe.request_reply
        producer = RabbitMQProducer(
            key, spec.endpoint, self._persistent, window, exchange=exchange, replies=requester
        )
        if requester:
            old = self._requesters.get(producer_id)
            if old is not None:
                # Replaced after a failure: its connection goes now, even if a
                # receiver still holds it (the receiver moves to the new one).
                old.release()
            self._requesters[producer_id] = producer
        return producer

    def consumer(self, consumer_id: int) -> ConsumerClient:
        spec = self.spec
        prefetch = spec.recipe.consumers.prefetch
        consumer = RabbitMQConsumer(
            spec.group_of(spec.subscriber) if self._pub_sub else spec.queue,
            # Pub-sub: every subscriber's dead letters go to the run's one DLQ (see settings).
            spec.dead_letter_queue,
            spec.endpoint,
            prefetch,
            self._quorum,
            short_poll=spec.recipe.consumers.poll == "short",
            responder=spec.recipe.request_reply,
        )
        if spec.recipe.request_reply:
            self._responders[consumer_id] = consumer
        return consumer

    def replier(self, consumer_id: int) -> DirectReplySender:
        consumer = self._responders.get(consumer_id)
        if consumer is None:
            raise BrokerError(f"rabbitmq: responder {consumer_id} has no consumer to reply for")
        return DirectReplySender(consumer)

    def replies(self, producer_id: int) -> DirectReplies:
        return DirectReplies(self._requesters, producer_id)

    def losses_expected(self) -> str | None:
        if self._persistent or self._quorum:
            return None
        return "fast: transient messages (delivery mode 1) are kept in memory only"

    def client_version(self) -> str:
        return f"pika {pika.__version__}"

    def close(self) -> None:
        if self._drain is not None:
            self._drain.close()
        if self._admin is not None:
            self._admin.close()
            self._admin = None
