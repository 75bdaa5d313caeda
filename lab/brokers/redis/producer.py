"""The Redis producer, and what it shares with the adapter: how entries look."""

import time

import redis

from lab.brokers.contract import Ack, BrokerError, Outgoing, SynchronousProducer

FIELD = b"d"
SEQ_BITS = 20  # an entry id "ms-seq" as one sortable number: ms << 20 | seq


def position(entry_id: bytes | str) -> int:
    ms, _, seq = text(entry_id).partition("-")
    return int(ms) << SEQ_BITS | int(seq or 0)


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def stream_entries(reply: dict | list | None) -> list:
    """The entries of an XREAD / XREADGROUP reply for one stream: a map under RESP3
    (redis-py 8's default), a list of pairs under RESP2, None when nothing came."""
    if not reply:
        return []
    [entries] = reply.values() if isinstance(reply, dict) else [e for _, e in reply]
    return entries


def entry_payload(fields: list | None) -> bytes | None:
    """The lab's payload of an entry as a raw reply has it ([field, value, ...]); None
    when the entry was deleted while pending."""
    if not fields:
        return None
    if fields[0] == FIELD:  # the lab writes only this field
        return fields[1]
    return dict(zip(fields[::2], fields[1::2], strict=True)).get(FIELD)


class RedisProducer(SynchronousProducer):
    """XADDs of a batch in one write on a connection of its own, replies read in order.

    redis-py's Pipeline costs about twice as much CPU per command (a command stack,
    response callbacks, retry wrapping) as packing the commands with its (hiredis)
    serializer and reading the replies: 11 against 5 us a message on this machine."""

    def __init__(self, client: redis.Redis, stream: str, trim: dict, max_age: float) -> None:
        self.client = client
        self.stream = stream
        self.trim = trim
        self.max_age_ms = int(max_age * 1000)
        super().__init__()
        self._conn: redis.connection.AbstractConnection | None = None
        try:
            client.ping()  # redis-py connects lazily; connect before saying ready
        except redis.RedisError as exc:
            raise BrokerError(f"redis: cannot connect: {exc}") from exc

    def _head(self) -> tuple:
        """XADD up to its first field: the stream and the trimming of the recipe."""
        trim: tuple = ()
        if self.max_age_ms:
            trim = ("MINID", int(time.time() * 1000) - self.max_age_ms)
        elif self.trim:
            trim = ("MAXLEN", "~" if self.trim["approximate"] else "=", self.trim["maxlen"])
        return ("XADD", self.stream, *trim, "*", FIELD)

    def send(self, batch: list[Outgoing]) -> None:
        if self.max_age_ms and self.trim:
            # Both limits at once: left to redis-py, which says that XADD takes one.
            self._send_pipelined(batch)
            return
        head = self._head()
        if self._conn is None:
            self._conn = self.client.connection_pool.get_connection()
        conn, acks = self._conn, self._acks
        try:
            conn.send_packed_command(conn.pack_commands([(*head, m.payload) for m in batch]))
            for msg in batch:
                try:
                    entry_id = conn.read_response()
                except redis.ResponseError as exc:
                    acks.append(Ack(msg.seq, msg.intended_ns, False, str(exc)))
                else:
                    # Redis answered: the entry is in the stream (and, with appendfsync
                    # always, on disk).
                    acks.append(Ack(msg.seq, msg.intended_ns, True, None, 0, position(entry_id)))
        except redis.RedisError as exc:
            # Replies still unread would answer the next batch's commands: start afresh.
            conn.disconnect()
            raise BrokerError(f"redis: XADD failed: {exc}") from exc

    def _send_pipelined(self, batch: list[Outgoing]) -> None:
        trim = {"minid": int(time.time() * 1000) - self.max_age_ms, **self.trim}
        pipe = self.client.pipeline(transaction=False)
        for msg in batch:
            pipe.xadd(self.stream, {FIELD: msg.payload}, **trim)
        try:
            results = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise BrokerError(f"redis: XADD failed: {exc}") from exc
        for msg, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                self._acks.append(Ack(msg.seq, msg.intended_ns, False, str(result)))
            else:
                self._acks.append(Ack(msg.seq, msg.intended_ns, True, None, 0, position(result)))

    def close(self) -> None:
        if self._conn is not None:
            self.client.connection_pool.release(self._conn)
            self._conn = None
        self.client.close()


class RepliesOffProducer(RedisProducer):
    """Fire-and-forget: CLIENT REPLY OFF on its own connection, then XADDs written to the
    socket and never answered. Nothing is acked; an XADD Redis refused is never known."""

    def send(self, batch: list[Outgoing]) -> None:
        head = self._head()
        try:
            if self._conn is None:
                self._conn = self.client.connection_pool.get_connection()
                self._conn.send_command("CLIENT", "REPLY", "OFF")
            conn = self._conn
            conn.send_packed_command(conn.pack_commands([(*head, m.payload) for m in batch]))
        except (redis.RedisError, OSError) as exc:
            if self._conn is not None:
                self._conn.disconnect()
            self._conn = None
            raise BrokerError(f"redis: XADD failed: {exc}") from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()  # its replies are off: not for anyone else's use
            self._conn = None
        self.client.close()
