"""Redis Streams as a work queue: a stream, one consumer group, XACK after processing.

Producers pipeline XADD; consumers XREADGROUP new entries and, every `claim_idle`, take
over entries that a dead consumer left pending (XAUTOCLAIM). Redis has no negative ack:
a rejected entry is re-claimed by its own consumer (XCLAIM, which counts the delivery)
and handed out again. Lag comes from XINFO GROUPS (`lag` + `pending`), not XLEN, which
counts acknowledged entries too.
"""

import contextlib
import time
from collections import deque

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab.brokers.base import (
    Ack,
    BrokerAdapter,
    BrokerError,
    ConsumerClient,
    Delivery,
    Outgoing,
    Probe,
    ProducerClient,
)
from lab.endpoints import Endpoint

FIELD = b"d"
# A blocking read must return before the socket times out, or a quiet stream looks dead.
SOCKET_TIMEOUT = 10.0


def _client(ep: Endpoint) -> redis.Redis:
    return redis.Redis(
        host=ep.host,
        port=ep.port,
        password=ep.password,
        db=int(ep.path or 0),
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=5.0,
        # Retrying inside redis-py would hide a broker that is down; the worker decides.
        retry=Retry(NoBackoff(), 0),
    )


class RedisAdapter(BrokerAdapter):
    name = "redis"

    def __init__(self, spec) -> None:  # noqa: ANN001 - RunSpec, see base
        super().__init__(spec)
        self._admin: redis.Redis | None = None

    @property
    def admin(self) -> redis.Redis:
        if self._admin is None:
            self._admin = _client(self.spec.admin)
        return self._admin

    def _durability(self) -> dict[str, str]:
        # "safe": every write is fsynced to the append-only file before Redis replies.
        # "fast": the append-only file is fsynced once a second (Redis's default advice),
        # so a crash can lose up to a second of acknowledged writes.
        fsync = "always" if self.spec.recipe.durability == "safe" else "everysec"
        return {"appendonly": "yes", "appendfsync": fsync}

    def provision(self) -> None:
        try:
            for key, value in self._durability().items():
                self.admin.config_set(key, value)
            self.admin.xgroup_create(self.spec.queue, self.spec.group, id="0", mkstream=True)
        except redis.RedisError as exc:
            raise BrokerError(f"redis: provisioning {self.spec.queue} failed: {exc}") from exc

    def probe(self, final: bool = False) -> Probe:
        try:
            groups = self.admin.xinfo_groups(self.spec.queue)
        except redis.RedisError as exc:
            raise BrokerError(str(exc)) from exc
        for group in groups:
            if _text(group["name"]) == self.spec.group:
                pending = int(group["pending"])
                lag = group.get("lag")
                if lag is None:
                    # Redis cannot tell the lag after entries were deleted from the middle
                    # of the stream; count what the group has not read yet instead.
                    lag = len(
                        self.admin.xrange(
                            self.spec.queue, _next_id(group["last-delivered-id"]), "+"
                        )
                    )
                return Probe(depth=int(lag) + pending, detail={"pending": pending, "lag": int(lag)})
        return Probe(depth=None)

    def teardown(self) -> None:
        # The broker may be down at the end of a fault drill; then there is nothing to undo.
        with contextlib.suppress(redis.RedisError):
            self.admin.delete(self.spec.queue)

    def settings(self) -> dict[str, str]:
        return {
            **self._durability(),
            "structure": "stream + consumer group (XREADGROUP, XACK)",
            "redelivery": f"XAUTOCLAIM after {self.spec.recipe.redis.claim_idle:g}s idle",
        }

    def client_version(self) -> str:
        return f"redis-py {redis.__version__}"

    def producer(self, producer_id: int) -> ProducerClient:
        return RedisProducer(_client(self.spec.endpoint), self.spec.queue)

    def consumer(self, consumer_id: int) -> ConsumerClient:
        return RedisConsumer(
            _client(self.spec.endpoint),
            self.spec.queue,
            self.spec.group,
            f"consumer-{consumer_id}",
            int(self.spec.recipe.redis.claim_idle * 1000),
        )

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


class RedisProducer(ProducerClient):
    def __init__(self, client: redis.Redis, stream: str) -> None:
        self.client = client
        self.stream = stream
        self._acks: list[Ack] = []

    def send(self, batch: list[Outgoing]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for msg in batch:
            pipe.xadd(self.stream, {FIELD: msg.payload})
        try:
            results = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise BrokerError(f"redis: XADD failed: {exc}") from exc
        # Redis answered: each XADD that returned an id is in the stream (and, with
        # appendfsync always, on disk).
        for msg, result in zip(batch, results, strict=True):
            error = str(result) if isinstance(result, Exception) else None
            self._acks.append(Ack(msg.seq, msg.intended_ns, error is None, error))

    def poll(self, timeout: float) -> list[Ack]:
        acks, self._acks = self._acks, []
        if not acks and timeout > 0:
            time.sleep(timeout)
        return acks

    def flush(self, timeout: float) -> list[Ack]:
        return self.poll(0)

    def close(self) -> None:
        self.client.close()


class RedisConsumer(ConsumerClient):
    def __init__(
        self, client: redis.Redis, stream: str, group: str, name: str, claim_idle_ms: int
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.name = name
        self.claim_idle_ms = claim_idle_ms
        self._again: deque[Delivery] = deque()  # claimed or rejected: hand out first
        self._next_claim = time.monotonic() + claim_idle_ms / 1000

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        try:
            if time.monotonic() >= self._next_claim:
                self._claim_abandoned(max_messages)
            if self._again:
                return [self._again.popleft() for _ in range(min(max_messages, len(self._again)))]
            reply = self.client.xreadgroup(
                self.group,
                self.name,
                {self.stream: ">"},
                count=max_messages,
                block=max(1, int(timeout * 1000)),
            )
        except redis.RedisError as exc:
            raise BrokerError(f"redis: XREADGROUP failed: {exc}") from exc
        if not reply:
            return []
        [(_, entries)] = reply
        return [Delivery(fields[FIELD], entry_id, 1) for entry_id, fields in entries if fields]

    def _claim_abandoned(self, count: int) -> None:
        """Take over entries another consumer has held for longer than claim_idle."""
        self._next_claim = time.monotonic() + self.claim_idle_ms / 1000
        _, entries, _deleted = self.client.xautoclaim(
            self.stream, self.group, self.name, self.claim_idle_ms, "0-0", count=count
        )
        self._queue_again([(eid, fields) for eid, fields in entries if fields])

    def _queue_again(self, entries: list) -> None:
        if not entries:
            return
        counts = self._delivery_counts([eid for eid, _ in entries])
        for entry_id, fields in entries:
            self._again.append(Delivery(fields[FIELD], entry_id, counts.get(entry_id, 0)))

    def _delivery_counts(self, ids: list) -> dict:
        pending = self.client.xpending_range(
            self.stream,
            self.group,
            min=ids[0],
            max=ids[-1],
            count=len(ids) * 2,
            consumername=self.name,
        )
        return {p["message_id"]: int(p["times_delivered"]) for p in pending}

    def ack(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        try:
            self.client.xack(self.stream, self.group, *[d.handle for d in deliveries])
        except redis.RedisError as exc:
            raise BrokerError(f"redis: XACK failed: {exc}") from exc

    def reject(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        ids = [d.handle for d in deliveries]
        try:
            # XCLAIM to ourselves resets the idle time and counts one more delivery.
            claimed = self.client.xclaim(self.stream, self.group, self.name, 0, ids)
            self._queue_again([(eid, fields) for eid, fields in claimed if fields])
        except redis.RedisError as exc:
            raise BrokerError(f"redis: XCLAIM failed: {exc}") from exc

    def close(self) -> None:
        self.client.close()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _next_id(entry_id: object) -> str:
    ms, _, seq = _text(entry_id).partition("-")
    return f"{ms}-{int(seq or 0) + 1}"
