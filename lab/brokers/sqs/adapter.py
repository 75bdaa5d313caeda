"""SQS: a queue per run (pub-sub: per subscriber) and its dead-letter queue, through boto3.

Producers send batches of ten (SendMessageBatch); consumers long-poll ReceiveMessage and
delete what they processed (DeleteMessageBatch). A reject makes a message visible again
at once (visibility 0); ApproximateReceiveCount is its attempt. A consumer that dies
leaves its messages invisible until the queue's VisibilityTimeout: then they are
delivered again. Dead letters and redrive: dlq.py.

Pub-sub. No SNS: the producer sends each batch to every subscriber's queue, and a message
is acked once every queue took it. Each subscriber's consumers read their own queue, its
dead letters go to its own DLQ by the same redrive policy, and its depth is its queue's.
Request-reply: a reply queue per requester, replies.py.

Retention. SQS deletes by age only (MessageRetentionPeriod, 60 s to 14 days) and never
says which messages it deleted. Where the server reports the period back, so that it
keeps one, the probe gives a retention floor by the server's own clock: every acked
message sent before now - period is past it. ElasticMQ accepts the attribute, does not
report it and deletes nothing: then there is no floor, and nothing is named dropped.
"""

from botocore.client import BaseClient

from lab.brokers.contract import (
    BrokerAdapter,
    BrokerError,
    ConsumerClient,
    DeadLetter,
    Probe,
    ProducerClient,
    RunSpec,
)
from lab.brokers.sqs import dlq as sqs_dlq
from lab.brokers.sqs import queues
from lab.brokers.sqs.client import ERRORS, broker_error, is_missing_queue, make_client, version
from lab.brokers.sqs.clients import SqsConsumer, SqsProducer
from lab.brokers.sqs.replies import SqsReplyReceiver, SqsReplySender
from lab.brokers.sqs.settings import run_settings

COUNTS = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


class SqsAdapter(BrokerAdapter):
    name = "sqs"

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._client = None
        self._urls: dict[str, str] = {}
        self.period = queues.retention_period(spec.recipe)
        self.period_kept: bool | None = None  # known once provisioned

    @property
    def client(self) -> BaseClient:
        if self._client is None:
            self._client = make_client(self.spec.admin)
        return self._client

    def _url(self, name: str) -> str:
        if name not in self._urls:
            self._urls[name] = self.client.get_queue_url(QueueName=name)["QueueUrl"]
        return self._urls[name]

    def provision(self) -> None:
        spec = self.spec
        urls: dict[str, str] = {}
        kept: dict = {}
        try:
            for sub in spec.subscribers:  # pub-sub: a queue and a DLQ per subscriber
                dlq_name, main_name = (
                    queues.dead_letter_queue(spec, sub),
                    queues.main_queue(spec, sub),
                )
                dlq = self.client.create_queue(
                    QueueName=dlq_name, Attributes=queues.dlq_attributes(spec)
                )["QueueUrl"]
                arn = self.client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
                main = self.client.create_queue(
                    QueueName=main_name,
                    Attributes=queues.main_attributes(spec, arn["Attributes"]["QueueArn"]),
                )["QueueUrl"]
                kept = self.client.get_queue_attributes(QueueUrl=main, AttributeNames=["All"])
                urls.update({dlq_name: dlq, main_name: main})
            for name in queues.reply_queues(spec):
                urls[name] = self.client.create_queue(
                    QueueName=name, Attributes=queues.reply_attributes(spec)
                )["QueueUrl"]
        except ERRORS as exc:
            raise broker_error(f"provisioning {queues.main_queue(spec)}", exc) from exc
        self._urls = urls
        given = kept["Attributes"].get("MessageRetentionPeriod")
        self.period_kept = self.period is not None and given == str(self.period)

    def _counts(self, name: str) -> dict:
        return self.client.get_queue_attributes(QueueUrl=self._url(name), AttributeNames=COUNTS)

    def probe(self, final: bool = False) -> Probe:
        spec = self.spec
        try:
            mains = {sub: self._counts(queues.main_queue(spec, sub)) for sub in spec.subscribers}
            deads = [self._counts(queues.dead_letter_queue(spec, sub)) for sub in spec.subscribers]
        except ERRORS as exc:
            if is_missing_queue(exc):
                return Probe(depth=None)  # a server that restarted without its store
            raise broker_error("GetQueueAttributes", exc) from exc
        counts = {
            sub: [int(main["Attributes"].get(name, 0)) for name in COUNTS]
            for sub, main in mains.items()
        }
        floor = {}
        now = queues.server_ms(next(iter(mains.values())))
        if self.period_kept and now is not None:
            floor = {0: now - self.period * 1000}
        totals = [sum(column) for column in zip(*counts.values(), strict=True)]
        return Probe(
            depth=sum(totals),
            subscriber_depths=(
                {sub: sum(c) for sub, c in counts.items()}
                if spec.recipe.pattern == "pub-sub"
                else {}
            ),
            dead_letters=sum(
                int(dead["Attributes"].get(name, 0)) for dead in deads for name in COUNTS
            ),
            retention_floor=floor,
            detail=dict(zip(("visible", "in_flight", "delayed"), totals, strict=True)),
        )

    def _queues(self) -> list[str]:
        """Every queue of the run."""
        spec = self.spec
        pairs = [
            (queues.main_queue(spec, sub), queues.dead_letter_queue(spec, sub))
            for sub in spec.subscribers
        ]
        return [name for pair in pairs for name in pair] + queues.reply_queues(spec)

    def teardown(self, keep_dead_letters: bool = False) -> None:
        try:
            if keep_dead_letters and self.probe(final=True).dead_letters:
                return
            for name in self._queues():
                try:
                    self.client.delete_queue(QueueUrl=self._url(name))
                except ERRORS as exc:
                    if not is_missing_queue(exc):
                        raise
        except (*ERRORS, BrokerError):
            return  # the server may be down at the end of a fault drill

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        for sub in self.spec.subscribers:
            try:
                url = self._url(queues.dead_letter_queue(self.spec, sub))
            except ERRORS as exc:
                if is_missing_queue(exc):
                    continue
                raise broker_error("GetQueueUrl", exc) from exc
            letters += sqs_dlq.browse(self.client, url, self.spec, limit - len(letters))
            if len(letters) >= limit:
                break
        return sorted(letters, key=lambda d: (d.first_failure, d.id))

    def redrive(self) -> int:
        """Each dead-letter queue back into its own queue (pub-sub: its subscriber's)."""
        moved = 0
        for sub in self.spec.subscribers:
            try:
                dlq = self._url(queues.dead_letter_queue(self.spec, sub))
                main = self._url(queues.main_queue(self.spec, sub))
            except ERRORS as exc:
                raise broker_error("GetQueueUrl", exc) from exc
            moved += sqs_dlq.redrive(self.client, dlq, main, self.spec)
        return moved

    def settings(self) -> dict[str, str]:
        return run_settings(self.spec, self.period_kept)

    def client_version(self) -> str:
        return version()

    def producer(self, producer_id: int) -> ProducerClient:
        return SqsProducer(self.spec, producer_id)

    def consumer(self, consumer_id: int) -> ConsumerClient:
        return SqsConsumer(self.spec, consumer_id)

    def replier(self, consumer_id: int) -> SqsReplySender:
        return SqsReplySender(self.spec)

    def replies(self, producer_id: int) -> SqsReplyReceiver:
        return SqsReplyReceiver(self.spec, producer_id)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
