"""PostgreSQL as a queue: one table per run, rows in with COPY, rows out two ways.

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
"""

import contextlib

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
        table = sql.Identifier(self._table_name)
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
        for statement in pgdlq.provision_statements(self.spec):
            self._execute(statement)
        if pgdlq.has_retention(self.spec.recipe.retention):
            self._retention = pgdlq.RetentionJob(self.spec)

    def probe(self, final: bool = False) -> Probe:
        job = self._retention
        if job is not None and job.due(final):
            job.run(self._execute, final)
        table, dead = sql.Identifier(self._table_name), sql.Identifier(pgdlq.dlq_table(self.spec))
        # The dead-letter table holds only poison messages: counting it stays cheap.
        if final:
            [(depth, letters)] = self._execute(
                sql.SQL("SELECT (SELECT count(*) FROM {}), (SELECT count(*) FROM {})").format(
                    table, dead
                )
            )
            detail = {"depth": "exact"}
        else:
            [(depth, letters)] = self._execute(
                sql.SQL(
                    "SELECT (SELECT count(*) FROM (SELECT FROM {} LIMIT %s) AS head),"
                    " (SELECT count(*) FROM {})"
                ).format(table, dead),
                (EXACT_DEPTH_LIMIT + 1,),
            )
            detail = {"depth": "exact"}
            if depth > EXACT_DEPTH_LIMIT:
                # Two index probes; an upper bound, since acked rows leave holes in the range.
                [(span,)] = self._execute(
                    sql.SQL("SELECT max(id) - min(id) + 1 FROM {}").format(table)
                )
                depth, detail = max(depth, span or 0), {"depth": "estimate"}
        # Taken last: if a query above failed, the names wait for the next probe.
        return Probe(
            depth=depth,
            dead_letters=letters,
            retention_dropped=job.total if job else None,
            dropped=job.take() if job else b"",
            detail=detail,
        )

    def teardown(self, keep_dead_letters: bool = False) -> None:
        if keep_dead_letters:
            return  # both tables stay for `lab dlq`; its own teardown drops them
        drop = sql.SQL("DROP TABLE IF EXISTS {}, {}").format(
            sql.Identifier(self._table_name), sql.Identifier(pgdlq.dlq_table(self.spec))
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
        rows = self._execute(pgdlq.browse_statement(self.spec), (limit,), binary=True)
        return [
            dead_letter_of(str(id_), self.spec.run_id, head, reason, attempts, first, last)
            for id_, head, reason, attempts, first, last in rows
        ]

    def redrive(self) -> int:
        [(moved, _)] = self._execute(pgdlq.redrive_statement(self.spec), (self._table_name,))
        return moved

    def settings(self) -> dict[str, str]:
        pg = self.spec.options
        if pg.consume == "polling":
            consume = f"polling every {pg.poll_interval:g}s, no row locks"
            extra = {"visibility_timeout": f"{VISIBILITY_TIMEOUT:g}s"}
        else:
            consume, extra = "skip-locked + LISTEN/NOTIFY", {}
        return {
            "synchronous_commit": self.sync_commit,
            "consume": consume,
            "insert": "COPY in batches, one commit per batch",
            "ack": "DELETE",
            **extra,
            "retention": pgdlq.describe_retention(self.spec.recipe.retention),
            "dead_letters": (
                f"table {pgdlq.dlq_table(self.spec)}: INSERT + DELETE committed with the"
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

    def close(self) -> None:
        _close(self._admin)
        self._admin = None


class PostgresProducer(SynchronousProducer):
    """Each send is one transaction: COPY the batch, NOTIFY, COMMIT. The commit is the ack."""

    def __init__(self, spec: RunSpec, producer_id: int, sync_commit: str) -> None:
        self._endpoint = spec.endpoint
        self._name = f"{pgdlq.pg_name(spec)}-producer-{producer_id}"
        self._sync_commit = sync_commit
        self._conn = _connect(self._endpoint, self._name, sync_commit)
        table = sql.Identifier(pgdlq.pg_name(spec))
        self._copy = sql.SQL("COPY {} (payload) FROM STDIN (FORMAT BINARY)").format(table)
        self._channel = pgdlq.pg_name(spec)
        super().__init__()

    def send(self, batch: list[Outgoing]) -> None:
        if not batch:
            return
        if self._conn.closed:  # lost in an earlier send: the broker may be back
            self._conn = _connect(self._endpoint, self._name, self._sync_commit)
        step = "insert"
        try:
            with self._conn.cursor() as cur:
                with cur.copy(self._copy) as copy:
                    copy.set_types(["bytea"])
                    for msg in batch:
                        copy.write_row((msg.payload,))
                # Delivered to listeners only when (and if) the commit succeeds.
                cur.execute("SELECT pg_notify(%s, '')", (self._channel,))
            # A connection lost during COMMIT leaves the outcome unknown: say so.
            step = "commit (outcome unknown)"
            self._conn.commit()
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):
                self._conn.rollback()
            raise BrokerError(f"postgres: {step} of {len(batch)} messages failed: {exc}") from exc
        self._acks += [Ack(msg.seq, msg.intended_ns, True) for msg in batch]

    def close(self) -> None:
        _close(self._conn)
