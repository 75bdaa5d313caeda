"""Kafka: a topic per run, one consumer group, offsets committed after processing.

Two clients do the workload, chosen by the recipe's `kafka.client`: confluent-kafka
(librdkafka, kafka_confluent.py) and kafka-python (kafka_python.py). Both are configured
alike and share OffsetTracker (kafka_common.py). Provisioning, probes, teardown and the
dead letters' browse and redrive, here, always use confluent-kafka (an AdminClient, and
consumers that only read offsets or read by assign()), so two runs differ only where the
workload runs. A reject re-publishes the message to the end of its partition and then
acks it; retention, those retries and the `<topic>.dlq` dead letters are in kafka_dlq.py.
"""

import time

import confluent_kafka
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from lab.brokers.contract import (
    BrokerAdapter,
    BrokerError,
    ConsumerClient,
    DeadLetter,
    Probe,
    ProducerClient,
    RunSpec,
)
from lab.brokers.kafka import dlq as kafka_dlq
from lab.brokers.kafka import replies
from lab.brokers.kafka.common import (
    ADMIN_TIMEOUT,
    CLIENT_LOG,
    COMMIT_INTERVAL,
    DELIVERY_TIMEOUT_MS,
    FINAL_PROBE_TIMEOUT,
    FLUSH_NOTE,
    LINGER_MS,
    PROBE_TIMEOUT,
    SESSION_TIMEOUT_MS,
    bootstrap,
    close_producer,
    durability,
    producer_config,
    reason,
)


class KafkaAdapter(BrokerAdapter):
    name = "kafka"

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._client = spec.options.client
        self._partitions = [TopicPartition(spec.queue, n) for n in range(spec.recipe.partitions)]
        self._probe_lists: tuple[list[TopicPartition], ...] | None = None
        # Offset readers by group: pub-sub has a group per subscriber.
        self._watchers: dict[str, confluent_kafka.Consumer] = {}

    def _admin(self) -> AdminClient:
        """A new admin client for each provision, teardown and redrive, never kept: after
        a broker restart, librdkafka 2.16's AdminClient fails some requests for good."""
        return AdminClient(
            {
                "bootstrap.servers": bootstrap(self.spec.admin),
                "logger": CLIENT_LOG,
                "log.connection.close": False,
            }
        )

    def _consumer_config(self) -> dict:
        # In the run's group for want of another name, but never subscribed: it never
        # joins, and never commits.
        return {
            "bootstrap.servers": bootstrap(self.spec.admin),
            "group.id": self.spec.group,
            "enable.auto.commit": False,
            "logger": CLIENT_LOG,
            "log.connection.close": False,
        }

    @property
    def watcher(self) -> confluent_kafka.Consumer:
        """The probes' one client, made on first use: a consumer that only reads offsets.
        AdminClient.list_offsets would do too, but keeps failing (FENCED_LEADER_EPOCH)
        once the broker restarted."""
        return self._watcher_of(self.spec.group)

    def _watcher_of(self, group: str) -> confluent_kafka.Consumer:
        watcher = self._watchers.get(group)
        if watcher is None:
            config = {**self._consumer_config(), "group.id": group}
            watcher = self._watchers[group] = confluent_kafka.Consumer(config)
        # Log lines reach the logger only while the client is polled.
        watcher.poll(0)
        return watcher

    def _reader(self) -> confluent_kafka.Consumer:
        """A consumer that reads the DLQ by assign(), made for one browse or redrive."""
        return confluent_kafka.Consumer(
            {
                **self._consumer_config(),
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )

    def provision(self) -> None:
        admin = self._admin()
        recipe = self.spec.recipe
        reply_topics = replies.topics(self.spec)
        topics = [
            NewTopic(
                self.spec.queue,
                num_partitions=recipe.partitions,
                replication_factor=1,
                config=kafka_dlq.topic_configs(recipe),
            ),
            kafka_dlq.dlq_topic(self.spec),
            *(NewTopic(name, num_partitions=1, replication_factor=1) for name in reply_topics),
        ]
        futures = admin.create_topics(topics, request_timeout=ADMIN_TIMEOUT)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as e:
                raise BrokerError(f"creating Kafka topic {name}: {reason(e)}") from e
        self._await_topic(admin, self.spec.queue, recipe.partitions)
        for name in (self.spec.dead_letter_queue, *reply_topics):
            self._await_topic(admin, name, 1)
        self._await_coordinator()

    def _await_coordinator(self) -> None:
        """Until the group's coordinator answers. On a fresh broker it first creates
        __consumer_offsets (NOT_COORDINATOR until then); waiting here spares the first
        consumer seconds of backed-off retries."""
        deadline = time.monotonic() + ADMIN_TIMEOUT
        while True:
            try:
                self.watcher.committed(self._partitions, timeout=5)
                return
            except KafkaException as e:
                if time.monotonic() > deadline:
                    raise BrokerError(f"Kafka group coordinator: {reason(e)}") from e
            time.sleep(0.1)

    def _await_topic(self, admin: AdminClient, topic: str, partitions: int | None) -> None:
        """Until the broker's metadata shows the topic with a leader for every partition
        (partitions=None: no longer shows it): the controller answers before the broker
        has caught up."""
        deadline = time.monotonic() + ADMIN_TIMEOUT
        while time.monotonic() < deadline:
            try:
                topics = admin.list_topics(topic, timeout=5).topics
            except KafkaException:
                topics = None  # not answering yet: try again until the deadline
            else:
                meta = topics.get(topic)
                gone = meta is None or (
                    meta.error is not None and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
                )
                if partitions is None and gone:
                    return
                ready = (
                    meta is not None
                    and meta.error is None
                    and len(meta.partitions) == partitions
                    and all(p.leader >= 0 and p.error is None for p in meta.partitions.values())
                )
                if ready:
                    return
            time.sleep(0.05)
        state = "go away" if partitions is None else "appear"
        raise BrokerError(f"Kafka topic {topic} did not {state} in {ADMIN_TIMEOUT:g}s")

    def probe(self, final: bool = False) -> Probe:
        deadline = time.monotonic() + (FINAL_PROBE_TIMEOUT if final else PROBE_TIMEOUT)

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        watcher = self.watcher
        try:
            partitions, end_of, start_of = self._probe_lists or self._make_probe_lists(left())
            *ends, dlq_end = watcher.offsets_for_times(end_of, timeout=left())
            *starts, dlq_start = watcher.offsets_for_times(start_of, timeout=left())
            subscribers = self.spec.subscribers
            done = {
                sub: self._watcher_of(self.spec.group_of(sub)).committed(partitions, timeout=left())
                for sub in subscribers
            }
        except KafkaException as e:
            raise BrokerError(f"Kafka probe: {reason(e)}") from e
        every_done = [tp for offsets in done.values() for tp in offsets]
        for tp in (*ends, *starts, *every_done, dlq_end, dlq_start):
            if tp.error is not None:
                where = f"{tp.topic} partition {tp.partition}"
                raise BrokerError(f"Kafka probe: {where}: {tp.error.str()}")
        high = {tp.partition: tp.offset for tp in ends}
        # Log start offsets: what retention deleted from offsets that began at 0.
        low = {tp.partition: tp.offset for tp in starts}
        depths, committed_total = {}, 0
        for sub, offsets in done.items():
            # Nothing committed yet (a negative offset) counts from the oldest message held.
            committed = {tp.partition: tp.offset for tp in offsets}
            depths[sub] = sum(max(0, high[n] - max(low[n], committed.get(n, -1))) for n in high)
            committed_total += sum(off for off in committed.values() if off >= 0)
        retained = kafka_dlq.has_retention(self.spec.recipe)
        return Probe(
            depth=sum(depths.values()),
            subscriber_depths=depths if self.spec.recipe.pattern == "pub-sub" else {},
            dead_letters=dlq_end.offset - dlq_start.offset,
            # Records, not messages: retried copies that retention deleted count too.
            retention_dropped=sum(low.values()) if retained else None,
            retention_floor=low if retained else {},
            detail={
                "end_offsets": sum(high.values()),
                "committed": committed_total,
            },
        )

    def _make_probe_lists(self, timeout: float) -> tuple[list[TopicPartition], ...]:
        """What probes ask about: the main topic's partitions as the broker has them (an
        adapter that `lab dlq` makes for a running run knows only a default recipe), and
        for offsets_for_times, which takes timestamps -1 and -2 as "the end" and "the
        start", those and the DLQ's one partition, last."""
        topic = self.spec.queue
        meta = self.watcher.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            why = meta.error.str() if meta is not None and meta.error else "no such topic"
            raise BrokerError(f"Kafka probe: {topic}: {why}")
        partitions = [TopicPartition(topic, n) for n in sorted(meta.partitions)]
        both = [*partitions, TopicPartition(self.spec.dead_letter_queue, 0)]
        self._probe_lists = (
            partitions,
            [TopicPartition(tp.topic, tp.partition, OFFSET_END) for tp in both],
            [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in both],
        )
        return self._probe_lists

    def teardown(self, keep_dead_letters: bool = False) -> None:
        # Kept: the group too, whose offsets say what of the main topic was consumed, so
        # that only the redriven messages are new to it.
        if keep_dead_letters:
            return
        admin = self._admin()
        topics = [self.spec.queue, self.spec.dead_letter_queue, *replies.topics(self.spec)]
        futures = admin.delete_topics(topics, request_timeout=ADMIN_TIMEOUT)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as e:
                err = e.args[0] if e.args else None
                unknown = KafkaError.UNKNOWN_TOPIC_OR_PART
                if not isinstance(err, KafkaError) or err.code() != unknown:
                    raise BrokerError(f"deleting Kafka topic {name}: {reason(e)}") from e
        for name in topics:
            self._await_topic(admin, name, None)
        names = [self.spec.group_of(sub) for sub in self.spec.subscribers]
        groups = admin.delete_consumer_groups(names, request_timeout=10)
        for name, future in groups.items():
            try:
                future.result()
            except KafkaException as e:
                # No consumer ever joined, or one is still connected: nothing worth failing for.
                CLIENT_LOG.info("kafka group %s not deleted: %s", name, reason(e))

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        reader = self._reader()
        try:
            return kafka_dlq.browse(reader, self.spec, limit, ADMIN_TIMEOUT)
        except KafkaException as e:
            raise BrokerError(f"reading Kafka dead letters: {reason(e)}") from e
        finally:
            reader.close()

    def redrive(self) -> int:
        reader = self._reader()
        config = producer_config(self.spec, f"{self.spec.queue}-redrive", self.spec.admin)
        producer = confluent_kafka.Producer(config)
        try:
            return kafka_dlq.redrive(reader, producer, self._admin(), self.spec, ADMIN_TIMEOUT)
        except KafkaException as e:
            raise BrokerError(f"redriving Kafka dead letters: {reason(e)}") from e
        finally:
            close_producer(producer)
            reader.close()

    def settings(self) -> dict[str, str]:
        acks, idempotence = durability(self.spec.recipe)
        return {
            "acks": acks,
            "idempotence": str(idempotence).lower(),
            "linger": f"{LINGER_MS} ms",
            "delivery_timeout": f"{DELIVERY_TIMEOUT_MS // 1000} s",
            "flush": FLUSH_NOTE,
            "replication_factor": "1",
            "partitions": str(self.spec.recipe.partitions),
            "commit": f"after processing, every {COMMIT_INTERVAL * 1000:g} ms at most "
            "(async; sync on rebalance and close)",
            "auto_offset_reset": "earliest (also past records that retention deleted)",
            "session_timeout": f"{SESSION_TIMEOUT_MS // 1000} s",
            **kafka_dlq.settings(self.spec),
            "client": self.client_version(),
        }

    def read_settings(self) -> dict[str, str]:
        """The topic's durability settings as the broker reports them (acks belongs to
        the producers, which the settings say)."""
        resource = ConfigResource(ConfigResource.Type.TOPIC, self.spec.queue)
        names = ("min.insync.replicas", "unclean.leader.election.enable", "flush.messages")
        # The client is held until the answer is in: one dropped while its request is
        # out is destroyed under it ("Handle is terminating") and the future fails.
        admin = self._admin()
        try:
            [future] = admin.describe_configs([resource]).values()
            configs = future.result(timeout=ADMIN_TIMEOUT)
        except KafkaException as e:
            raise BrokerError(f"Kafka describe configs: {reason(e)}") from e
        finally:
            del admin
        return {name: configs[name].value for name in names if name in configs}

    def losses_expected(self) -> str | None:
        if self.spec.recipe.durability == "safe":
            return None
        return "fast: acks=1 confirms once the leader has a message, before other replicas"

    def client_version(self) -> str:
        if self._client == "kafka-python":
            import kafka

            return f"kafka-python {kafka.__version__}"
        # version() is a (string, int) pair in older releases, a string in 2.16.
        return (
            f"confluent-kafka {confluent_kafka.__version__} "
            f"(librdkafka {confluent_kafka.libversion()[0]})"
        )

    def producer(self, producer_id: int) -> ProducerClient:
        if self._client == "kafka-python":
            from lab.brokers.kafka.kafka_python import KafkaPythonProducer

            return KafkaPythonProducer(self.spec, producer_id)
        from lab.brokers.kafka.confluent import ConfluentProducer

        return ConfluentProducer(self.spec, producer_id)

    def consumer(self, consumer_id: int) -> ConsumerClient:
        if self._client == "kafka-python":
            from lab.brokers.kafka.kafka_python import KafkaPythonConsumer

            return KafkaPythonConsumer(self.spec, consumer_id)
        from lab.brokers.kafka.confluent import ConfluentConsumer

        return ConfluentConsumer(self.spec, consumer_id)

    def replier(self, consumer_id: int) -> replies.KafkaReplySender:
        return replies.KafkaReplySender(self.spec, consumer_id)

    def replies(self, producer_id: int) -> replies.KafkaReplyReceiver:
        return replies.KafkaReplyReceiver(self.spec, producer_id)

    def close(self) -> None:
        for watcher in self._watchers.values():
            watcher.close()
        self._watchers = {}
