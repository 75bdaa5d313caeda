"""The PostgreSQL consumers: SKIP LOCKED claims (the right way) and polling (the
anti-pattern). See adapter.py for how each works and what it costs."""

import time

import psycopg
from psycopg import sql

from lab.brokers.contract import BrokerError, ConsumerClient, DeadLetterInfo, Delivery, RunSpec
from lab.brokers.postgres import dlq as pgdlq
from lab.brokers.postgres.connection import close as _close
from lab.brokers.postgres.connection import connect as _connect

VISIBILITY_TIMEOUT = 30.0  # polling mode: seconds before a 'processing' row is new again


class _Consumer(ConsumerClient):
    """Connection handling shared by both modes; a failed call reconnects on the next."""

    def __init__(self, spec: RunSpec, consumer_id: int, sync_commit: str) -> None:
        self._spec = spec
        # Pub-sub: the subscriber's name too, so pg_stat_activity tells the tables' readers apart.
        role = f"{spec.subscriber}-consumer" if spec.subscriber else "consumer"
        self._name = f"{pgdlq.pg_name(spec)}-{role}-{consumer_id}"
        self._sync_commit = sync_commit
        self._prefetch = spec.recipe.consumers.prefetch
        self._table = sql.Identifier(pgdlq.queue_table(spec))  # the subscriber's, in pub-sub
        self._dead_letter = pgdlq.dead_letter_statement(spec)
        self._conn: psycopg.Connection | None = None
        self._connect()

    def _connect(self) -> psycopg.Connection:
        if self._conn is None:
            self._conn = _connect(self._spec.endpoint, self._name, self._sync_commit)
        return self._conn

    def _fail(self, exc: psycopg.Error, what: str) -> BrokerError:
        self.close()
        return BrokerError(f"postgres: {what} failed: {exc}")

    def _rows(self, query: sql.Composable, params: tuple) -> list[tuple]:
        # Binary results: bytea arrives as bytes without hex decoding.
        return self._connect().execute(query, params, binary=True).fetchall()

    def close(self) -> None:
        _close(self._conn)  # the server rolls back whatever was claimed and not acked
        self._conn = None


class SkipLockedConsumer(_Consumer):
    def __init__(self, spec: RunSpec, consumer_id: int, sync_commit: str) -> None:
        self._listener: psycopg.Connection | None = None
        self._held: set[int] = set()  # rows claimed in the open transaction
        super().__init__(spec, consumer_id, sync_commit)
        # Our own locks do not make rows skip-locked for us, hence the id filter.
        self._claim = sql.SQL(
            "SELECT id, payload, attempts FROM {} WHERE id <> ALL(%s::bigint[])"
            " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
        ).format(self._table)
        self._delete = sql.SQL("DELETE FROM {} WHERE id = ANY(%s::bigint[])").format(self._table)
        self._retry = sql.SQL(
            # The statement's own clock: now() would be when the claim transaction began.
            "UPDATE {} SET attempts = attempts + 1,"
            " first_failure = coalesce(first_failure, clock_timestamp())"
            " WHERE id = ANY(%s::bigint[])"
        ).format(self._table)

    def _listen(self) -> psycopg.Connection:
        if self._listener is None:
            self._listener = _connect(self._spec.endpoint, self._name + "-listen", autocommit=True)
            channel = sql.Identifier(pgdlq.pg_name(self._spec))  # the run's, every subscriber's
            self._listener.execute(sql.SQL("LISTEN {}").format(channel))
        return self._listener

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        want = min(max_messages, self._prefetch - len(self._held))
        if want <= 0:
            return []
        deadline = time.monotonic() + timeout
        try:
            listener = self._listen()
            while True:
                # Wake-ups that came before this claim are answered by it: drop them.
                for _ in listener.notifies(timeout=0):
                    pass
                rows = self._rows(self._claim, (list(self._held), want))
                if not rows and not self._held:
                    self._connect().rollback()  # no idle transaction while we sleep
                remaining = deadline - time.monotonic()
                if rows or remaining <= 0:
                    break
                for _ in listener.notifies(timeout=remaining, stop_after=1):
                    break
        except psycopg.Error as exc:
            raise self._fail(exc, "claim") from exc
        self._held.update(row[0] for row in rows)
        return [Delivery(payload, id_, attempts + 1) for id_, payload, attempts in rows]

    def _finish(
        self, ids: list[int], query: sql.Composable, params: tuple | dict, what: str
    ) -> None:
        try:
            if ids:
                self._connect().execute(query, params)
                self._held.difference_update(ids)
            # Committing releases every claim of the transaction, so wait for the last.
            if not self._held and self._conn is not None:
                self._conn.commit()
        except psycopg.Error as exc:
            raise self._fail(exc, what) from exc

    def _ours(self, deliveries: list[Delivery]) -> list[int]:
        # Handles from a claim that was since rolled back are no longer ours to touch.
        return [d.handle for d in deliveries if d.handle in self._held]

    def ack(self, deliveries: list[Delivery]) -> None:
        ids = self._ours(deliveries)
        self._finish(ids, self._delete, (ids,), "ack")

    def reject(self, deliveries: list[Delivery]) -> None:
        ids = self._ours(deliveries)
        self._finish(ids, self._retry, (ids,), "reject")

    def dead_letter(self, letters: list[tuple[Delivery, DeadLetterInfo]]) -> None:
        letters = [(d, info) for d, info in letters if d.handle in self._held]
        params = pgdlq.dead_letter_params(letters)
        self._finish(params["ids"], self._dead_letter, params, "dead-letter")

    def close(self) -> None:
        super().close()
        self._held.clear()
        _close(self._listener)
        self._listener = None


class PollingConsumer(_Consumer):
    visibility_timeout = VISIBILITY_TIMEOUT

    def __init__(self, spec: RunSpec, consumer_id: int, sync_commit: str) -> None:
        super().__init__(spec, consumer_id, sync_commit)
        self._interval = spec.options.poll_interval
        self._next_poll = 0.0
        self._select = sql.SQL(
            "SELECT id, payload, attempts FROM {} WHERE status = 'new'"
            " OR (status = 'processing' AND claimed_at < now() - make_interval(secs => %s))"
            " ORDER BY id LIMIT %s"
        ).format(self._table)
        self._mark = sql.SQL(
            "UPDATE {} SET status = 'processing', claimed_at = now() WHERE id = ANY(%s::bigint[])"
        ).format(self._table)
        self._delete = sql.SQL("DELETE FROM {} WHERE id = ANY(%s::bigint[])").format(self._table)
        self._retry = sql.SQL(
            "UPDATE {} SET status = 'new', claimed_at = NULL, attempts = attempts + 1,"
            " first_failure = coalesce(first_failure, clock_timestamp())"
            " WHERE id = ANY(%s::bigint[])"
        ).format(self._table)

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            # The cadence is the consumer's, not the caller's: a new receive() does not
            # poll early, which is where this mode's latency comes from.
            pause = self._next_poll - time.monotonic()
            if pause > 0:
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
                if time.monotonic() < self._next_poll:
                    return []
            try:
                conn = self._connect()
                want = min(max_messages, self._prefetch)
                rows = self._rows(self._select, (self.visibility_timeout, want))
                if rows:
                    # Not atomic with the SELECT: another consumer may have read the same rows.
                    conn.execute(self._mark, ([row[0] for row in rows],))
                conn.commit()
            except psycopg.Error as exc:
                raise self._fail(exc, "poll") from exc
            if rows:
                return [Delivery(payload, id_, attempts + 1) for id_, payload, attempts in rows]
            self._next_poll = time.monotonic() + self._interval
            if time.monotonic() >= deadline:
                return []

    def _finish(self, query: sql.Composable, params: tuple | dict, what: str) -> None:
        try:
            conn = self._connect()
            conn.execute(query, params)
            conn.commit()
        except psycopg.Error as exc:
            raise self._fail(exc, what) from exc

    def ack(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            self._finish(self._delete, ([d.handle for d in deliveries],), "ack")

    def reject(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            self._finish(self._retry, ([d.handle for d in deliveries],), "reject")

    def dead_letter(self, letters: list[tuple[Delivery, DeadLetterInfo]]) -> None:
        # A row another poller took and settled first is gone: it yields no dead letter.
        if letters:
            self._finish(self._dead_letter, pgdlq.dead_letter_params(letters), "dead-letter")
