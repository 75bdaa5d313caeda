"""Redis Streams: a stream per run, one consumer group, XACK after processing.

adapter.py   the adapter, its producer and consumer, retention and dead letters
native.py    redis-server with a generated config; service.py its container
"""

from typing import TYPE_CHECKING

from lab.brokers.plugin import BrokerPlugin
from lab.brokers.redis.options import RedisOptions
from lab.endpoints import Endpoint

if TYPE_CHECKING:
    from lab.brokers.contract import BrokerAdapter, RunSpec
    from lab.runtimes.containers import Service
    from lab.runtimes.native.spec import NativeBroker
    from lab.settings import Settings


class RedisPlugin(BrokerPlugin):
    name = "redis"
    display = "Redis Streams"
    order = 30
    patterns = ("work-queue", "pub-sub", "fire-and-forget", "request-reply")
    request_reply = "a reply stream per requester (XADD by the responder, XREAD BLOCK)"
    fire_and_forget = "XADD on a connection with CLIENT REPLY OFF: Redis answers nothing"
    polling = {
        "long": "XREADGROUP ... BLOCK 100",
        "short": "XREADGROUP without BLOCK",
    }
    ports = {"redis": 379}
    schemes = ("redis",)
    default_port = 6379
    url_example = "redis://:PASSWORD@HOST:6379/0"
    options = RedisOptions
    preload = ("redis",)
    container_start_timeout = 30.0

    def endpoint(self, host: str, port: int, secret: str | None) -> Endpoint:
        return Endpoint(self.name, "redis", host, port, password=secret, path="0")

    def check_url(self, ep: Endpoint) -> str | None:
        if ep.path and not ep.path.isdigit():
            return "has a database that is not a number: e.g. redis://HOST:6379/0"
        return None

    def probe(self, ep: Endpoint, timeout: float) -> str | None:
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
            # A Redis still loading its AOF answers PING with an error: that is not ready.
            client.ping()
            return client.info("server").get("redis_version")
        finally:
            client.close()

    def adapter(self, spec: "RunSpec") -> "BrokerAdapter":
        from lab.brokers.redis.adapter import RedisAdapter

        return RedisAdapter(spec)

    def native(self, settings: "Settings") -> "NativeBroker":
        from lab.brokers.redis.native import RedisBroker

        return RedisBroker(settings, self)

    def service(self, settings: "Settings") -> "Service":
        from lab.brokers.redis.service import single_node

        return single_node(settings)


PLUGIN = RedisPlugin()
