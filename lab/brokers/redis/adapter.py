"""Redis Streams as a work queue: a stream, one consumer group, XACK after processing.

Producers pipeline XADD; consumers XREADGROUP new entries and, every `claim_idle`, take
over entries that a dead consumer left pending (XAUTOCLAIM). Redis has no negative ack:
a rejected entry is re-claimed by its own consumer (XCLAIM, which counts the delivery)
and handed out again. Lag comes from XINFO GROUPS (`lag` + `pending`), not XLEN, which
counts acknowledged entries too.

Retention trims the stream as it grows (XADD MAXLEN / MINID). Trimmed entries are gone
whatever the group did with them; the probe reports the stream's first entry id as the
retention floor, and the engine names the acked messages below it from the entry ids
XADD returned. Dead letters go to a second stream, `<stream>.dlq`, in one MULTI with
the XACK that removes them from the group.
"""

import contextlib
import time
from collections import deque

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab.brokers.contract import (
    BrokerAdapter,
    BrokerError,
    ConsumerClient,
    DeadLetter,
    DeadLetterInfo,
    Delivery,
    Probe,
    ProducerClient,
    RunSpec,
    dead_letter_of,
)
from lab.brokers.redis.producer import (
    FIELD,
    RedisProducer,
    RepliesOffProducer,
    entry_payload,
    position,
    stream_entries,
    text,
)
from lab.brokers.redis.replies import RedisReplyReceiver, RedisReplySender
from lab.endpoints import Endpoint

# A blocking read must return before the socket times out, or a quiet stream looks dead.
SOCKET_TIMEOUT = 10.0
REDRIVE_BATCH = 1000


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

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._admin: redis.Redis | None = None

    @property
    def admin(self) -> redis.Redis:
        if self._admin is None:
            self._admin = _client(self.spec.admin)
        return self._admin

    def _durability(self) -> dict[str, str]:
        # "safe": every write reaches the append-only file on disk before Redis replies.
        # "fast": memory only, Redis as a cache: a crash loses everything not yet consumed.
        if self.spec.recipe.durability == "safe":
            return {"appendonly": "yes", "appendfsync": "always"}
        return {"appendonly": "no"}

    def provision(self) -> None:
        self.apply_durability()
        try:
            for subscriber in self.spec.subscribers:  # pub-sub: a group per subscriber
                group = self.spec.group_of(subscriber)
                self.admin.xgroup_create(self.spec.queue, group, id="0", mkstream=True)
        except redis.RedisError as exc:
            raise BrokerError(f"redis: provisioning {self.spec.queue} failed: {exc}") from exc

    def apply_durability(self) -> None:
        # CONFIG SET lives in the server's memory only: a restart from redis.conf undoes it.
        try:
            for key, value in self._durability().items():
                self.admin.config_set(key, value)
        except redis.RedisError as exc:
            raise BrokerError(f"redis: setting the durability failed: {exc}") from exc

    def read_settings(self) -> dict[str, str]:
        try:
            found = self.admin.config_get("append*")
        except redis.RedisError as exc:
            raise BrokerError(f"redis: CONFIG GET failed: {exc}") from exc
        return {k: found[k] for k in ("appendonly", "appendfsync") if k in found}

    def losses_expected(self) -> str | None:
        if self.spec.recipe.durability == "safe":
            return None
        return "fast: Redis without its append-only file holds messages in memory only"

    def probe(self, final: bool = False) -> Probe:
        stream = self.spec.queue
        try:
            pipe = self.admin.pipeline(transaction=False)
            pipe.xinfo_groups(stream)
            pipe.xinfo_stream(stream)
            pipe.xlen(self.spec.dead_letter_queue)
            groups, info, dead = pipe.execute()
        except redis.ResponseError:
            return Probe(depth=None)  # no stream: nothing was sent, or Redis lost it all
        except redis.RedisError as exc:
            raise BrokerError(str(exc)) from exc
        by_name = {text(g["name"]): g for g in groups}
        depths: dict[str, int] = {}
        for subscriber in self.spec.subscribers:
            group = by_name.get(self.spec.group_of(subscriber))
            if group is None:
                return Probe(depth=None, dead_letters=dead)
            depths[subscriber] = self._group_depth(group)
        retained = self._has_retention()
        return Probe(
            depth=sum(depths.values()),
            dead_letters=dead,
            retention_dropped=(info["entries-added"] - info["length"]) if retained else None,
            retention_floor={0: self._floor(info)} if retained else {},
            subscriber_depths=depths if self.spec.recipe.pattern == "pub-sub" else {},
        )

    def _group_depth(self, group: dict) -> int:
        """What a group has not finished: entries it has not read, and pending ones."""
        lag = group.get("lag")
        if lag is None:
            # Redis cannot tell the lag once entries were trimmed past the group's
            # position; count what it has not read yet (at most the stream's length).
            after = _after(group["last-delivered-id"])
            lag = len(self.admin.xrange(self.spec.queue, after, "+"))
        return int(lag) + int(group["pending"])

    def _has_retention(self) -> bool:
        r = self.spec.recipe.retention
        return bool(r.max_age or r.max_messages or r.max_bytes)

    @staticmethod
    def _floor(info: dict) -> int:
        first = info.get("first-entry")
        if first:
            return position(first[0])
        return position(info["last-generated-id"]) + 1  # everything is gone

    def teardown(self, keep_dead_letters: bool = False) -> None:
        # The broker may be down at the end of a fault drill; then there is nothing to undo.
        with contextlib.suppress(redis.RedisError):
            if keep_dead_letters and self.admin.xlen(self.spec.dead_letter_queue):
                return
            self.admin.delete(self.spec.queue, self.spec.dead_letter_queue, *self._reply_streams())

    def _reply_streams(self) -> list[str]:
        if not self.spec.recipe.request_reply:
            return []
        return [self.spec.reply_to(i) for i in range(self.spec.recipe.producers.count)]

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        try:
            entries = self.admin.xrange(self.spec.dead_letter_queue, count=limit)
        except redis.RedisError as exc:
            raise BrokerError(f"redis: reading dead letters failed: {exc}") from exc
        return [
            dead_letter_of(
                text(entry_id),
                self.spec.run_id,
                f[FIELD],
                text(f[b"reason"]),
                int(f[b"attempts"]),
                float(f[b"first"]),
                float(f[b"last"]),
            )
            for entry_id, f in entries
        ]

    def redrive(self) -> int:
        moved = 0
        try:
            while entries := self.admin.xrange(self.spec.dead_letter_queue, count=REDRIVE_BATCH):
                pipe = self.admin.pipeline(transaction=True)
                for _, fields in entries:
                    pipe.xadd(self.spec.queue, {FIELD: fields[FIELD]}, **self._trim())
                pipe.xdel(self.spec.dead_letter_queue, *[eid for eid, _ in entries])
                pipe.execute()
                moved += len(entries)
        except redis.RedisError as exc:
            raise BrokerError(f"redis: redrive failed after {moved}: {exc}") from exc
        return moved

    def _trim(self) -> dict:
        """XADD's trimming arguments for the recipe's retention (exact, so the oldest go
        first and the floor is sharp)."""
        r = self.spec.recipe.retention
        limit = r.max_messages
        if r.max_bytes:
            # Redis trims by count, not bytes: the byte limit becomes a count of messages
            # of the recipe's mean size.
            by_size = max(1, int(r.max_bytes / self.spec.recipe.mean_size))
            limit = min(limit, by_size) if limit else by_size
        if limit:
            return {"maxlen": limit, "approximate": False}
        return {}

    def settings(self) -> dict[str, str]:
        r = self.spec.recipe.retention
        retention = "none"
        if self._has_retention():
            parts = []
            if self._trim():
                parts.append(f"XADD MAXLEN = {self._trim()['maxlen']}")
            if r.max_age:
                parts.append(f"XADD MINID = now - {r.max_age:g}s")
            retention = ", ".join(parts)
        return {
            **self._durability(),
            "structure": "stream + consumer group (XREADGROUP, XACK)",
            "redelivery": f"XAUTOCLAIM after {self.spec.options.claim_idle:g}s idle",
            "retention": retention,
            "dead_letters": f"stream {self.spec.dead_letter_queue} (XADD + XACK in MULTI)",
        }

    def client_version(self) -> str:
        return f"redis-py {redis.__version__}"

    def producer(self, producer_id: int) -> ProducerClient:
        kind = RepliesOffProducer if self.spec.recipe.forget else RedisProducer
        return kind(
            _client(self.spec.endpoint),
            self.spec.queue,
            self._trim(),
            self.spec.recipe.retention.max_age,
        )

    def consumer(self, consumer_id: int) -> ConsumerClient:
        return RedisConsumer(
            _client(self.spec.endpoint),
            self.spec,
            f"consumer-{consumer_id}",
            int(self.spec.options.claim_idle * 1000),
        )

    def replier(self, consumer_id: int) -> RedisReplySender:
        return RedisReplySender(_client(self.spec.endpoint), self.spec)

    def replies(self, producer_id: int) -> RedisReplyReceiver:
        return RedisReplyReceiver(_client(self.spec.endpoint), self.spec.reply_to(producer_id))

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


def block(timeout: float) -> tuple:
    """XREADGROUP's wait: BLOCK in ms; none at all for a short poll (timeout 0)."""
    ms = int(timeout * 1000)
    return ("BLOCK", ms) if ms > 0 else ()


class RedisConsumer(ConsumerClient):
    def __init__(self, client: redis.Redis, spec: RunSpec, name: str, claim_idle_ms: int) -> None:
        self.client = client
        self.stream = spec.queue
        self.dlq = spec.dead_letter_queue
        self.group = spec.group
        self.name = name
        self.claim_idle_ms = claim_idle_ms
        self._again: deque[Delivery] = deque()  # claimed or rejected: hand out first
        self._next_claim = time.monotonic() + claim_idle_ms / 1000
        # XREADGROUP and XACK, once per batch, go on a connection of their own as raw
        # commands: redis-py's command path costs twice their CPU (as RedisProducer's).
        self._conn: redis.connection.AbstractConnection | None = None

    def _call(self, *args: object) -> object:
        if self._conn is None:
            self._conn = self.client.connection_pool.get_connection()
        try:
            self._conn.send_command(*args)
            return self._conn.read_response()
        except redis.ResponseError:
            raise
        except redis.RedisError:
            self._conn.disconnect()  # a reply may still be on its way: start afresh
            raise

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        try:
            if time.monotonic() >= self._next_claim:
                self._claim_abandoned(max_messages)
            if self._again:
                return [self._again.popleft() for _ in range(min(max_messages, len(self._again)))]
            reply = self._call(
                "XREADGROUP",
                "GROUP",
                self.group,
                self.name,
                "COUNT",
                max_messages,
                *block(timeout),
                "STREAMS",
                self.stream,
                ">",
            )
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                # Redis restarted without its data (no AOF): the stream and the group are
                # gone. Start them again, so new messages flow; the old ones are lost.
                with contextlib.suppress(redis.ResponseError):
                    self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            raise BrokerError(f"redis: XREADGROUP failed: {exc}") from exc
        except redis.RedisError as exc:
            raise BrokerError(f"redis: XREADGROUP failed: {exc}") from exc
        out = []
        for entry_id, fields in stream_entries(reply):
            payload = entry_payload(fields)
            if payload is not None:
                out.append(Delivery(payload, entry_id, 1))
        return out

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
            self._call("XACK", self.stream, self.group, *[d.handle for d in deliveries])
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

    def dead_letter(self, letters: list[tuple[Delivery, DeadLetterInfo]]) -> None:
        if not letters:
            return
        pipe = self.client.pipeline(transaction=True)
        for d, info in letters:
            fields = {
                FIELD: d.payload,
                b"reason": info.reason,
                b"attempts": info.attempts,
                b"first": repr(info.first_failure),
                b"last": repr(info.last_failure),
            }
            pipe.xadd(self.dlq, fields)
        pipe.xack(self.stream, self.group, *[d.handle for d, _ in letters])
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise BrokerError(f"redis: dead-lettering failed: {exc}") from exc

    def close(self) -> None:
        if self._conn is not None:
            self.client.connection_pool.release(self._conn)
            self._conn = None
        self.client.close()


def _after(entry_id: object) -> str:
    ms, _, seq = text(entry_id).partition("-")
    return f"{ms}-{int(seq or 0) + 1}"
