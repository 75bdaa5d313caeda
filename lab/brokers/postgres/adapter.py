"""PostgreSQL as a queue: one table per run, each batch in with one INSERT, rows out two ways.

skip-locked (the right way): a consumer claims rows with SELECT ... FOR UPDATE SKIP
LOCKED in a transaction that stays open while the worker processes them; ack deletes
them, reject counts an attempt, and the commit that follows releases the claim. A
consumer that dies rolls back, so its rows are claimable again at once. An idle consumer
sleeps on LISTEN until a producer's commit sends NOTIFY.

polling (the anti-pattern, kept so users can see its cost): every poll_interval a plain
SELECT of 'new' rows, then a separate UPDATE to 'processing'. Two consumers can read the
same rows between the two statements, so they get duplicates; a row waits up to a whole
interval before anyone sees it. Rows left 'processing' by a dead consumer become 'new'
again after VISIBILITY_TIMEOUT seconds, the usual lease of such designs.

Either way ack DELETEs, so the table holds exactly the messages not yet done.

Retention and dead letters (SQL in dlq.py): the adapter instance
that provisioned the run runs a retention job from its probe, about once a second, and
names every row it deleted; a `lab dlq` instance made later for the same run only
browses, redrives and tears down. Dead letters live in the table `<table>_dlq`. Polling
mode holds no row locks, so retention can delete a row a polling consumer is processing
(its ack then deletes nothing: the message counts as delivered).

Pub-sub: a delivery row per subscriber. Each subscriber has a queue table of its own (and
a dead-letter table), and the producer INSERTs each batch into every one of them in one
transaction, so a subscriber is a work queue like any other: competing consumers, per
message retries and dead letters, depth from its own table's count. The price is a copy
of every message per subscriber (an append-only log with a cursor per subscriber would
write each message once, but then consumers of one subscriber cannot compete, and a
message cannot be retried or dead-lettered on its own). Request-reply: replies.py.
"""

import psycopg
from psycopg import sql

from lab.brokers.contract import (
    Ack,
    BrokerAdapter,
    BrokerError,
    ConsumerClient,
    DeadLetter,
    Outgoing,
    Probe,
    ProducerClient,
    RunSpec,
    SynchronousProducer,
    dead_letter_of,
)
from lab.brokers.postgres import dlq as pgdlq
from lab.brokers.postgres import replies
from lab.brokers.postgres.connection import close as _close
from lab.brokers.postgres.connection import connect as _connect
from lab.brokers.postgres.consumers import VISIBILITY_TIMEOUT, PollingConsumer, SkipLockedConsumer

# Live probes count rows exactly up to this many; beyond it the id range is the estimate,
# so a probe twice a second never scans a big backlog.
EXACT_DEPTH_LIMIT = 10_000


class PostgresAdapter(BrokerAdapter):
    name = "postgres"

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec)
        self._admin: psycopg.Connection | None = None
        # Made by provision(): only the engine's instance deletes anything. A `lab dlq`
        # instance asks for a final probe just to count dead letters.
        self._retention: pgdlq.RetentionJob | None = None
        self._table_name = pgdlq.pg_name(spec)  # also the NOTIFY channel
        subs = spec.subscribers  # ("",) but in pub-sub
        self._queues = [pgdlq.queue_table(spec, sub) for sub in subs]
        self._dlqs = [pgdlq.dlq_table(spec, sub) for sub in subs]

    @property
    def sync_commit(self) -> str:
        # "fast": commits return before the WAL is flushed; a crash can lose the last
        # fraction of a second of acknowledged messages, but never corrupts the table.
        # Fire-and-forget: asynchronous commit, the nearest a database comes to not waiting.
        recipe = self.spec.recipe
        return "on" if recipe.durability == "safe" and not recipe.forget else "off"

    def _execute(
        self, query: sql.Composable, params: tuple | dict = (), binary: bool = False
    ) -> list[tuple]:
        """Run one engine-side statement on the one reused autocommit connection."""
        try:
            if self._admin is None or self._admin.closed:
                name = f"{self._table_name}-admin"
                self._admin = _connect(self.spec.admin, name, autocommit=True)
            cur = self._admin.execute(query, params, binary=binary)
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            _close(self._admin)
            self._admin = None
            raise BrokerError(f"postgres: {exc}") from exc

    def provision(self) -> None:
        for subscriber in self.spec.subscribers:
            self._provision_queue(subscriber)
        if self.spec.recipe.request_reply:
            for statement in replies.provision_statements(self.spec):
                self._execute(statement)
        if pgdlq.has_retention(self.spec.recipe.retention):
            self._retention = pgdlq.RetentionJob(self.spec)

    def _provision_queue(self, subscriber: str) -> None:
        table = sql.Identifier(pgdlq.queue_table(self.spec, subscriber))
        self._execute(
            sql.SQL(
                """CREATE TABLE IF NOT EXISTS {} (
                    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    payload bytea NOT NULL,
                    attempts integer NOT NULL DEFAULT 0,
                    enqueued_at timestamptz NOT NULL DEFAULT now(),
                    status text NOT NULL DEFAULT 'new',  -- polling mode only
                    claimed_at timestamptz,              -- polling mode only
                    first_failure timestamptz            -- set by the first reject
                )"""
            ).format(table)
        )
        # The lab pads messages with one repeated byte; compressing that would flatter
        # PostgreSQL against brokers that store payloads as they are.
        self._execute(sql.SQL("ALTER TABLE {} ALTER payload SET STORAGE EXTERNAL").format(table))
        for statement in pgdlq.provision_statements(self.spec, subscriber):
            self._execute(statement)

    def probe(self, final: bool = False) -> Probe:
        job = self._retention
        if job is not None and job.due(final):
            job.run(self._execute, final)
        # Live probes stop counting at the limit; the final one counts everything. The
        # dead-letter tables hold only poison messages: counting them stays cheap.
        if final:
            head = sql.SQL("(SELECT count(*) FROM {})")
        else:
            head = sql.SQL("(SELECT count(*) FROM (SELECT FROM {} LIMIT %(limit)s) AS head)")
        counts = [head.format(sql.Identifier(t)) for t in self._queues] + [
            sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(t)) for t in self._dlqs
        ]
        [row] = self._execute(
            sql.SQL("SELECT ") + sql.SQL(", ").join(counts), {"limit": EXACT_DEPTH_LIMIT + 1}
        )
        depths, letters = list(row[: len(self._queues)]), sum(row[len(self._queues) :])
        detail = {"depth": "exact"}
        for n, depth in enumerate(depths):
            if not final and depth > EXACT_DEPTH_LIMIT:
                # Two index probes; an upper bound, since acked rows leave holes in the range.
                [(span,)] = self._execute(
                    sql.SQL("SELECT max(id) - min(id) + 1 FROM {}").format(
                        sql.Identifier(self._queues[n])
                    )
                )
                depths[n], detail = max(depth, span or 0), {"depth": "estimate"}
        by_subscriber = dict(zip(self.spec.subscribers, depths, strict=True))
        # Taken last: if a query above failed, the names wait for the next probe.
        return Probe(
            depth=sum(depths),
            dead_letters=letters,
            retention_dropped=job.total if job else None,
            dropped=job.take() if job else b"",
            detail=detail,
            subscriber_depths=by_subscriber if self.spec.recipe.pattern == "pub-sub" else {},
        )

    def teardown(self, keep_dead_letters: bool = False) -> None:
        if keep_dead_letters:
            return  # both tables stay for `lab dlq`; its own teardown drops them
        names = [*self._queues, *self._dlqs]
        if self.spec.recipe.request_reply:
            names.append(replies.table(self.spec))
        drop = sql.SQL("DROP TABLE IF EXISTS {}").format(
            sql.SQL(", ").join(sql.Identifier(name) for name in names)
        )
        try:
            # A consumer that hangs with its claim open would block DROP forever.
            self._execute(sql.SQL("SET lock_timeout = '5s'"))
            try:
                self._execute(drop)
            except BrokerError:
                self._execute(
                    sql.SQL(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE starts_with(application_name, %s) AND pid <> pg_backend_pid()"
                    ),
                    # Application names are cut at 63 bytes too (see connection.py).
                    ((self._table_name + "-")[:63],),
                )
                self._execute(drop)
        except BrokerError:
            pass  # the broker is down at the end of a fault drill: nothing left to undo

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        for sub in self.spec.subscribers:
            browse = pgdlq.browse_statement(self.spec, sub)
            rows = self._execute(browse, (limit - len(letters),), binary=True)
            letters += [
                # Pub-sub: row ids are per subscriber table, so the id says whose it is.
                dead_letter_of(f"{sub}/{id_}" if sub else str(id_), self.spec.run_id, *rest)
                for id_, *rest in rows
            ]
            if len(letters) >= limit:
                break
        return letters

    def redrive(self) -> int:
        moved = 0
        for sub in self.spec.subscribers:  # each subscriber's dead letters to its own queue
            redrive = pgdlq.redrive_statement(self.spec, sub)
            [(count, _)] = self._execute(redrive, (self._table_name,))
            moved += count
        return moved

    def settings(self) -> dict[str, str]:
        pg = self.spec.options
        if pg.consume == "polling":
            consume = f"polling every {pg.poll_interval:g}s, no row locks"
            extra = {"visibility_timeout": f"{VISIBILITY_TIMEOUT:g}s"}
        else:
            consume, extra = "skip-locked + LISTEN/NOTIFY", {}
        if self.spec.recipe.pattern == "pub-sub":
            extra["pub_sub"] = (
                f"a queue table per subscriber ({len(self._queues)}); the producer INSERTs each"
                " batch into every one in one transaction"
            )
        return {
            "synchronous_commit": self.sync_commit,
            "consume": consume,
            "insert": "one INSERT ... unnest per batch, its own transaction",
            "ack": "DELETE",
            **extra,
            "retention": pgdlq.describe_retention(self.spec.recipe.retention),
            "dead_letters": (
                f"table {self._dlqs[0]}"
                + (" and one beside each other subscriber's table" if len(self._dlqs) > 1 else "")
                + ": INSERT + DELETE committed with the"
                " consumer's batch; first failure = the earlier of the first reject"
                " (any consumer, kept in the row) and the consumer's own record"
            ),
        }

    def read_settings(self) -> dict[str, str]:
        """As a producer's connection sees them (synchronous_commit is per session)."""
        conn = _connect(self.spec.admin, f"{self._table_name}-settings", self.sync_commit)
        try:
            names = ("synchronous_commit", "fsync", "wal_sync_method")
            return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}
        except psycopg.Error as exc:
            raise BrokerError(f"postgres: reading the settings failed: {exc}") from exc
        finally:
            _close(conn)

    def losses_expected(self) -> str | None:
        if self.sync_commit == "on":
            return None
        return (
            "fast: synchronous_commit = off confirms a commit before its WAL is on disk,"
            " so a crash loses the last fraction of a second"
        )

    def client_version(self) -> str:
        libpq = psycopg.pq.version()
        return f"psycopg {psycopg.__version__} (libpq {libpq // 10000}.{libpq % 100})"

    def producer(self, producer_id: int) -> ProducerClient:
        return PostgresProducer(self.spec, producer_id, self.sync_commit)

    def consumer(self, consumer_id: int) -> ConsumerClient:
        if self.spec.options.consume == "polling":
            return PollingConsumer(self.spec, consumer_id, self.sync_commit)
        return SkipLockedConsumer(self.spec, consumer_id, self.sync_commit)

    def replier(self, consumer_id: int) -> replies.PostgresReplySender:
        return replies.PostgresReplySender(self.spec, consumer_id, self.sync_commit)

    def replies(self, producer_id: int) -> replies.PostgresReplyReceiver:
        return replies.PostgresReplyReceiver(self.spec, producer_id)

    def close(self) -> None:
        _close(self._admin)
        self._admin = None


class PostgresProducer(SynchronousProducer):
    """Each send is one statement in its own transaction, so one round trip: INSERT the
    batch (into every subscriber's table, in pub-sub) and NOTIFY. The commit is the ack.

    Not COPY: COPY, NOTIFY and COMMIT are four round trips, and each one is latency on
    every message of the batch (measured in docs/performance.md, issue 16)."""

    def __init__(self, spec: RunSpec, producer_id: int, sync_commit: str) -> None:
        self._endpoint = spec.endpoint
        self._name = f"{pgdlq.pg_name(spec)}-producer-{producer_id}"
        self._sync_commit = sync_commit
        self._conn = self._connect()
        # Data-modifying CTEs run to completion whether or not the outer query reads them;
        # unnest yields in array order, so ids follow the batch.
        inserts = sql.SQL(", ").join(
            sql.SQL("{} AS (INSERT INTO {} (payload) SELECT unnest(%(p)s::bytea[]))").format(
                sql.Identifier(f"q{i}"), sql.Identifier(pgdlq.queue_table(spec, sub))
            )
            for i, sub in enumerate(spec.subscribers)
        )
        # NOTIFY is delivered to listeners only when (and if) the statement commits.
        self._insert = sql.SQL("WITH {} SELECT pg_notify(%(c)s, '')").format(inserts)
        self._channel = pgdlq.pg_name(spec)
        super().__init__()

    def _connect(self) -> psycopg.Connection:
        return _connect(self._endpoint, self._name, self._sync_commit, autocommit=True)

    def send(self, batch: list[Outgoing]) -> None:
        if not batch:
            return
        if self._conn.closed:  # lost in an earlier send: the broker may be back
            self._conn = self._connect()
        params = {"p": [msg.payload for msg in batch], "c": self._channel}
        try:
            self._conn.execute(self._insert, params, binary=True)
        except psycopg.Error as exc:
            # The server's own error rolled the statement back; a connection lost while it
            # ran leaves the commit's outcome unknown: say so.
            step = "insert (outcome unknown)" if self._conn.closed else "insert"
            raise BrokerError(f"postgres: {step} of {len(batch)} messages failed: {exc}") from exc
        self._acks += [Ack(msg.seq, msg.intended_ns, True) for msg in batch]

    def close(self) -> None:
        _close(self._conn)
