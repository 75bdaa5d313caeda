"""One real message through each broker with its own client library."""

import time
import uuid

from lab.endpoints import Endpoint


def kafka(ep: Endpoint, payload: bytes) -> bytes:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    bootstrap = f"{ep.host}:{ep.port}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, payload)
    assert producer.flush(30) == 0, "kafka did not acknowledge the message"
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                return msg.value()
        raise AssertionError("kafka: no message consumed within 60 s")
    finally:
        consumer.close()
        admin.delete_topics([topic])


def rabbitmq(ep: Endpoint, payload: bytes) -> bytes:
    import pika

    params = pika.ConnectionParameters(
        ep.host, ep.port, credentials=pika.PlainCredentials(ep.username, ep.password)
    )
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        queue = ch.queue_declare(queue="", exclusive=True).method.queue
        ch.basic_publish("", queue, payload, mandatory=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            method, _, body = ch.basic_get(queue, auto_ack=True)
            if method:
                return body
            time.sleep(0.05)
        raise AssertionError("rabbitmq: no message in the queue within 10 s")
    finally:
        conn.close()


def redis(ep: Endpoint, payload: bytes) -> bytes:
    import redis as redis_py

    client = redis_py.Redis(host=ep.host, port=ep.port, password=ep.password)
    stream = f"roundtrip-{uuid.uuid4().hex[:8]}"
    try:
        client.xadd(stream, {"body": payload})
        [(_, [(_, fields)])] = client.xread({stream: "0"}, count=1, block=5000)
        return fields[b"body"]
    finally:
        client.delete(stream)
        client.close()


def postgres(ep: Endpoint, payload: bytes) -> bytes:
    import psycopg

    with psycopg.connect(
        host=ep.host, port=ep.port, user=ep.username, password=ep.password, dbname=ep.path
    ) as conn:
        conn.execute("CREATE TEMP TABLE roundtrip (body bytea)")
        conn.execute("INSERT INTO roundtrip VALUES (%s)", (payload,))
        return conn.execute("SELECT body FROM roundtrip").fetchone()[0]


def sqs(ep: Endpoint, payload: bytes) -> bytes:
    import base64

    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    scheme = "https" if ep.scheme == "sqs+https" else "http"
    client = boto3.client(
        "sqs",
        endpoint_url=f"{scheme}://{ep.host}:{ep.port}",
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )
    url = client.create_queue(QueueName=f"roundtrip-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    try:
        client.send_message(QueueUrl=url, MessageBody=base64.b64encode(payload).decode())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for m in client.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []):
                return base64.b64decode(m["Body"])
        raise AssertionError("sqs: no message received within 60 s")
    finally:
        client.delete_queue(QueueUrl=url)


def kinesis(ep: Endpoint, payload: bytes) -> bytes:
    import boto3

    # kinesalite checks no signature; any keys do.
    client = boto3.client(
        "kinesis",
        endpoint_url=f"http://{ep.host}:{ep.port}",
        region_name="us-east-1",
        aws_access_key_id="roundtrip",
        aws_secret_access_key="roundtrip",
    )
    stream = f"roundtrip-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=stream, ShardCount=1)
    try:
        client.get_waiter("stream_exists").wait(
            StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
        )
        put = client.put_record(StreamName=stream, Data=payload, PartitionKey="roundtrip")
        shard_iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        [record] = client.get_records(ShardIterator=shard_iterator)["Records"]
        return record["Data"]
    finally:
        client.delete_stream(StreamName=stream)
        client.close()


def pubsub(ep: Endpoint, payload: bytes) -> bytes:
    import grpc
    from google.pubsub_v1 import PublisherClient, SubscriberClient
    from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

    channel = grpc.insecure_channel(f"{ep.host}:{ep.port}")
    publisher = PublisherClient(transport=PublisherGrpcTransport(channel=channel))
    subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
    name = f"roundtrip-{uuid.uuid4().hex[:8]}"
    topic = f"projects/{ep.path or 'broker-lab'}/topics/{name}"
    subscription = f"projects/{ep.path or 'broker-lab'}/subscriptions/{name}"
    publisher.create_topic(name=topic)
    try:
        subscriber.create_subscription(name=subscription, topic=topic)
        publisher.publish(topic=topic, messages=[{"data": payload}])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = subscriber.pull(subscription=subscription, max_messages=1, timeout=5)
            for m in got.received_messages:
                subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id])
                return m.message.data
        raise AssertionError("pubsub: no message pulled within 60 s")
    finally:
        subscriber.delete_subscription(subscription=subscription)
        publisher.delete_topic(topic=topic)
        channel.close()


ROUNDTRIP = {
    "kafka": kafka,
    "rabbitmq": rabbitmq,
    "redis": redis,
    "postgres": postgres,
    "sqs": sqs,
    "pubsub": pubsub,
    "kinesis": kinesis,
}
