"""Request-reply on PostgreSQL: one reply table per run, `<table>_replies`, keyed by
requester, and a NOTIFY channel per requester, `<table>_reply_<requester>`.

A responder answers a batch in one statement, so one transaction: INSERT every reply and
pg_notify each requester that got one. The notifications go out only if the replies
commit, so a woken requester always finds its rows. The reply commits on the responder's
own connection before it acks the requests (which settles its claim transaction).

A requester LISTENs on its channel and takes its replies with DELETE ... RETURNING; when
there were none it sleeps on the connection until a NOTIFY comes, so it never polls. The
DELETE commits without waiting for the WAL flush (synchronous_commit = off on that
connection, whatever the run's durability): a crash can only bring back replies it had
already read, which it counts as duplicates, and a requester does not wait for the disk
for each reply it reads. One table for all requesters keeps provisioning constant; each
requester touches only its own rows (an index on requester), so they never wait for
each other.
"""

import time

import psycopg
from psycopg import sql

from lab.brokers.contract import BrokerError, ReplyReceiver, ReplySender, RunSpec
from lab.brokers.postgres.connection import close as _close
from lab.brokers.postgres.connection import connect as _connect
from lab.brokers.postgres.dlq import pg_name


def table(spec: RunSpec) -> str:
    return pg_name(spec, "_replies")


def channel(spec: RunSpec, requester: int) -> str:
    return pg_name(spec, f"_reply_{requester}")


def provision_statements(spec: RunSpec) -> list[sql.Composable]:
    name = sql.Identifier(table(spec))
    index = sql.Identifier(pg_name(spec, "_replies_requester"))
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (requester integer NOT NULL, payload bytea NOT NULL)"
        ).format(name),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (requester)").format(index, name),
    ]


class PostgresReplySender(ReplySender):
    def __init__(self, spec: RunSpec, consumer_id: int, sync_commit: str) -> None:
        self._spec = spec
        self._endpoint = spec.endpoint
        self._name = f"{pg_name(spec)}-responder-{consumer_id}"
        self._sync_commit = sync_commit
        self._conn = self._connect()
        # Data-modifying CTEs run whether or not the query reads them.
        self._insert = sql.SQL(
            "WITH written AS (INSERT INTO {} (requester, payload)"
            " SELECT * FROM unnest(%s::integer[], %s::bytea[]))"
            " SELECT pg_notify(c, '') FROM unnest(%s::text[]) AS c"
        ).format(sql.Identifier(table(spec)))

    def _connect(self) -> psycopg.Connection:
        return _connect(self._endpoint, self._name, self._sync_commit, autocommit=True)

    def send(self, replies: list[tuple[int, bytes]]) -> None:
        if not replies:
            return
        requesters = [r for r, _ in replies]
        channels = [channel(self._spec, r) for r in sorted(set(requesters))]
        try:
            if self._conn.closed:  # lost in an earlier send: the broker may be back
                self._conn = self._connect()
            self._conn.execute(self._insert, (requesters, [p for _, p in replies], channels))
        except psycopg.Error as exc:
            raise BrokerError(f"postgres: INSERT of {len(replies)} replies failed: {exc}") from exc

    def close(self) -> None:
        _close(self._conn)


class PostgresReplyReceiver(ReplyReceiver):
    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        name = f"{pg_name(spec)}-requester-{producer_id}"
        # LISTEN before the first DELETE: a reply that commits after it is notified, one
        # that committed before it is deleted by it.
        self._conn = _connect(spec.endpoint, name, "off", autocommit=True)
        listen = sql.SQL("LISTEN {}").format(sql.Identifier(channel(spec, producer_id)))
        try:
            self._conn.execute(listen)
        except psycopg.Error as exc:
            _close(self._conn)
            raise BrokerError(f"postgres: LISTEN for replies failed: {exc}") from exc
        # No LIMIT: the requester's window bounds what can wait for it.
        self._take = sql.SQL("DELETE FROM {} WHERE requester = %s RETURNING payload").format(
            sql.Identifier(table(spec))
        )
        self._params = (producer_id,)

    def receive(self, timeout: float) -> list[bytes]:
        deadline = time.monotonic() + timeout
        try:
            while True:
                # Wake-ups that came before this DELETE are answered by it: drop them.
                for _ in self._conn.notifies(timeout=0):
                    pass
                rows = self._conn.execute(self._take, self._params, binary=True).fetchall()
                remaining = deadline - time.monotonic()
                if rows or remaining <= 0:
                    return [payload for (payload,) in rows]
                for _ in self._conn.notifies(timeout=remaining, stop_after=1):
                    break
        except psycopg.Error as exc:
            raise BrokerError(f"postgres: reading replies failed: {exc}") from exc

    def close(self) -> None:
        _close(self._conn)
