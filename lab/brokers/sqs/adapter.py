"""SQS: a queue per run and its dead-letter queue, through boto3.

Producers send batches of ten (SendMessageBatch); consumers long-poll ReceiveMessage and
delete what they processed (DeleteMessageBatch). A reject makes a message visible again
at once (visibility 0); ApproximateReceiveCount is its attempt. A consumer that dies
leaves its messages invisible until the queue's VisibilityTimeout: then they are
delivered again. Dead letters and redrive: dlq.py.

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
        try:
            dlq = self.client.create_queue(
                QueueName=queues.dead_letter_queue(spec), Attributes=queues.dlq_attributes(spec)
            )["QueueUrl"]
            arn = self.client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
            main = self.client.create_queue(
                QueueName=queues.main_queue(spec),
                Attributes=queues.main_attributes(spec, arn["Attributes"]["QueueArn"]),
            )["QueueUrl"]
            kept = self.client.get_queue_attributes(QueueUrl=main, AttributeNames=["All"])
        except ERRORS as exc:
            raise broker_error(f"provisioning {queues.main_queue(spec)}", exc) from exc
        self._urls = {queues.dead_letter_queue(spec): dlq, queues.main_queue(spec): main}
        given = kept["Attributes"].get("MessageRetentionPeriod")
        self.period_kept = self.period is not None and given == str(self.period)

    def probe(self, final: bool = False) -> Probe:
        try:
            main = self.client.get_queue_attributes(
                QueueUrl=self._url(queues.main_queue(self.spec)), AttributeNames=COUNTS
            )
            dead = self.client.get_queue_attributes(
                QueueUrl=self._url(queues.dead_letter_queue(self.spec)), AttributeNames=COUNTS
            )
        except ERRORS as exc:
            if is_missing_queue(exc):
                return Probe(depth=None)  # a server that restarted without its store
            raise broker_error("GetQueueAttributes", exc) from exc
        counts = [int(main["Attributes"].get(name, 0)) for name in COUNTS]
        floor = {}
        now = queues.server_ms(main)
        if self.period_kept and now is not None:
            floor = {0: now - self.period * 1000}
        return Probe(
            depth=sum(counts),
            dead_letters=sum(int(dead["Attributes"].get(name, 0)) for name in COUNTS),
            retention_floor=floor,
            detail=dict(zip(("visible", "in_flight", "delayed"), counts, strict=True)),
        )

    def teardown(self, keep_dead_letters: bool = False) -> None:
        try:
            if keep_dead_letters and self.probe(final=True).dead_letters:
                return
            for name in (queues.main_queue(self.spec), queues.dead_letter_queue(self.spec)):
                try:
                    self.client.delete_queue(QueueUrl=self._url(name))
                except ERRORS as exc:
                    if not is_missing_queue(exc):
                        raise
        except (*ERRORS, BrokerError):
            return  # the server may be down at the end of a fault drill

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        try:
            url = self._url(queues.dead_letter_queue(self.spec))
        except ERRORS as exc:
            if is_missing_queue(exc):
                return []
            raise broker_error("GetQueueUrl", exc) from exc
        return sqs_dlq.browse(self.client, url, self.spec, limit)

    def redrive(self) -> int:
        try:
            dlq = self._url(queues.dead_letter_queue(self.spec))
            main = self._url(queues.main_queue(self.spec))
        except ERRORS as exc:
            raise broker_error("GetQueueUrl", exc) from exc
        return sqs_dlq.redrive(self.client, dlq, main, self.spec)

    def settings(self) -> dict[str, str]:
        return run_settings(self.spec, self.period_kept)

    def client_version(self) -> str:
        return version()

    def producer(self, producer_id: int) -> ProducerClient:
        return SqsProducer(self.spec, producer_id)

    def consumer(self, consumer_id: int) -> ConsumerClient:
        return SqsConsumer(self.spec, consumer_id)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
