"""Request-reply on Kafka: a reply topic per requester, `<topic>.reply-<requester>`, of
one partition (the way Kafka RPC frameworks give each client instance its own replies).

The responder produces each reply to its requester's topic and flushes before the
requests are committed; the requester reads its topic by assign() from the start, with
no group (no rebalance, no commits: the topic is the run's and holds replies to it
alone). Replies always go through confluent-kafka, whichever client runs the workload.
"""

import confluent_kafka
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from lab.brokers.contract import BrokerError, ReplyReceiver, ReplySender, RunSpec
from lab.brokers.kafka.common import CLIENT_LOG, MAX_BLOCK_S, bootstrap, close_producer, reason
from lab.brokers.kafka.common import producer_config as base_config


def topics(spec: RunSpec) -> list[str]:
    """The run's reply topics: one per requester."""
    if not spec.recipe.request_reply:
        return []
    return [spec.reply_to(i) for i in range(spec.recipe.producers.count)]


class KafkaReplySender(ReplySender):
    def __init__(self, spec: RunSpec, consumer_id: int) -> None:
        self.spec = spec
        # No linger: a reply waited on is sent at once (the flush would send it anyway).
        config = {**base_config(spec, f"{spec.queue}-responder-{consumer_id}"), "linger.ms": 0}
        self.producer = confluent_kafka.Producer(config)

    def send(self, replies: list[tuple[int, bytes]]) -> None:
        failed: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                failed.append(err)

        try:
            for requester, reply in replies:
                self.producer.produce(self.spec.reply_to(requester), reply, on_delivery=delivered)
            left = self.producer.flush(MAX_BLOCK_S)
        except (KafkaException, BufferError) as e:
            raise BrokerError(f"kafka: sending replies: {reason(e)}") from e
        if left or failed:
            why = failed[0].str() if failed else f"{left} not delivered in {MAX_BLOCK_S:g} s"
            raise BrokerError(f"kafka: sending replies: {why}")

    def close(self) -> None:
        close_producer(self.producer)


class KafkaReplyReceiver(ReplyReceiver):
    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        self.consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": bootstrap(spec.endpoint),
                "client.id": f"{spec.queue}-requester-{producer_id}",
                "group.id": spec.reply_to(producer_id),  # never joined: assign() only
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 100,
                "logger": CLIENT_LOG,
                "log.connection.close": False,
            }
        )
        self.consumer.assign([TopicPartition(spec.reply_to(producer_id), 0, OFFSET_BEGINNING)])

    def receive(self, timeout: float) -> list[bytes]:
        try:
            msgs = self.consumer.consume(1, timeout)
            if msgs:
                msgs += self.consumer.consume(500, 0)
        except KafkaException as e:
            raise BrokerError(f"kafka: reading replies: {reason(e)}") from e
        out = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise BrokerError(f"kafka: reading replies: {err.str()}")
                continue
            out.append(m.value())
        return out

    def close(self) -> None:
        self.consumer.close()
