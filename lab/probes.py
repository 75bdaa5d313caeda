"""Readiness means the broker answers its own protocol: one real client call per broker.

Each probe returns the version the broker reports (or None where the protocol does not
say) and raises on any failure. Used by every runtime.
"""

import logging
from collections.abc import Callable

from lab.endpoints import Endpoint

# pika logs every refused connection at ERROR; while a broker boots that is expected.
logging.getLogger("pika").setLevel(logging.CRITICAL)


def probe_kafka(ep: Endpoint, timeout: float) -> str | None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {
            "bootstrap.servers": f"{ep.host}:{ep.port}",
            "socket.timeout.ms": int(timeout * 1000),
            "log_level": 0,
        }
    )
    # Metadata with at least one broker means the KRaft controller elected itself and the
    # broker registered; an open port alone is not that.
    metadata = admin.list_topics(timeout=timeout)
    if not metadata.brokers:
        raise ConnectionError("kafka answered without any registered broker")
    return None


def probe_rabbitmq(ep: Endpoint, timeout: float) -> str | None:
    import pika

    params = pika.ConnectionParameters(
        host=ep.host,
        port=ep.port,
        virtual_host=ep.path or "/",
        credentials=pika.PlainCredentials(ep.username or "guest", ep.password or ""),
        connection_attempts=1,
        socket_timeout=timeout,
        blocked_connection_timeout=timeout,
        stack_timeout=timeout,
    )
    conn = pika.BlockingConnection(params)
    try:
        conn.channel().close()
        version = conn._impl.server_properties.get("version")
        return version.decode() if isinstance(version, bytes) else version
    finally:
        conn.close()


def probe_redis(ep: Endpoint, timeout: float) -> str | None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(
        host=ep.host,
        port=ep.port,
        password=ep.password,
        db=int(ep.path or 0),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # redis-py retries timeouts by default; a probe must answer in `timeout`, once.
        retry=Retry(NoBackoff(), 0),
    )
    try:
        # A Redis that is still loading its AOF answers PING with an error: that is not ready.
        client.ping()
        return client.info("server").get("redis_version")
    finally:
        client.close()


def probe_postgres(ep: Endpoint, timeout: float) -> str | None:
    import psycopg

    with psycopg.connect(
        host=ep.host,
        port=ep.port,
        user=ep.username,
        password=ep.password,
        dbname=ep.path or "postgres",
        connect_timeout=max(1, round(timeout)),
    ) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


PROBES: dict[str, Callable[[Endpoint, float], str | None]] = {
    "kafka": probe_kafka,
    "rabbitmq": probe_rabbitmq,
    "redis": probe_redis,
    "postgres": probe_postgres,
}


def probe(ep: Endpoint, timeout: float = 2.0) -> str | None:
    """The broker's version if it answers a real client call within `timeout`; raises otherwise."""
    return PROBES[ep.broker](ep, timeout)
