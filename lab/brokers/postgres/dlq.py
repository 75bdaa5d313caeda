"""PostgreSQL's table names, retention job and dead-letter tables (the SQL behind adapter.py).

Names: a work queue is the table `lab_<run id>`; in pub-sub each subscriber has a table of
its own, `lab_<run id>_<subscriber>`, and each queue table its dead-letter table beside it
(`<queue table>_dlq`). The run's name is also its one NOTIFY channel, whichever table
got rows: a subscriber's consumers wake for every batch anyway, since every batch is theirs.

Retention: PostgreSQL deletes nothing by itself, so the adapter that provisioned the run
runs a job from its probe, about once a second. One DELETE removes rows older than
max_age (by enqueued_at, indexed for it), and every row older than the newest
max_messages rows or than the newest max_bytes of payload. Victims are chosen with
FOR UPDATE SKIP LOCKED: a row a consumer holds is never waited for and never deleted
under it; it stays until the consumer settles it, and an old one goes on the next run
if it is back in the queue by then. DELETE ... RETURNING hands back each victim's lab
header, so the probe names exactly what retention took.

Dead letters: a table `<table>_dlq`. A consumer moves a message there with INSERT and
DELETE in one statement inside its claim transaction, so the move commits with the
batch like an ack, or not at all. Redrive is the reverse move, in one transaction with
the NOTIFY that wakes the consumers.
"""

import hashlib
import re
import time
from array import array
from collections.abc import Callable

from psycopg import sql

from lab import messages
from lab.brokers.contract import DeadLetterInfo, Delivery, RunSpec
from lab.recipes.model import Retention

# Probes come every 0.5 s: with this, every other one runs the job, about once a second.
JOB_INTERVAL = 0.9
# Rows per DELETE, so that one statement never holds a huge set of row locks; a live job
# goes on while it finds full batches, for at most LIVE_BUDGET seconds.
BATCH = 10_000
LIVE_BUDGET = 0.25
BROWSE_BYTES = 64  # payload bytes read per dead letter: its header and a printable start
NAME_MAX = 63  # bytes in a PostgreSQL identifier (NAMEDATALEN - 1)

Execute = Callable[..., list[tuple]]


def pg_name(spec: RunSpec, suffix: str = "") -> str:
    """The run's table name plus `suffix`, at most 63 bytes. PostgreSQL would silently cut
    a longer identifier (so that `<table>_dlq` of a long run id would be the queue table
    itself) and pg_notify refuses a longer channel name outright. A cut name keeps a hash
    of the whole, so runs that differ only at the end keep apart. Names that fit stay as
    they are."""
    table = table_of(spec)
    name = table + suffix
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.blake2b(table.encode(), digest_size=4).hexdigest()
    return table[: NAME_MAX - len(suffix) - len(digest) - 1] + "_" + digest + suffix


def table_of(spec: RunSpec) -> str:
    """SQL-safe name of the run's queue table, before pg_name cuts it to size."""
    return "lab_" + re.sub(r"[^a-z0-9_]", "_", spec.run_id.lower())


def _part(subscriber: str) -> str:
    return "_" + re.sub(r"[^a-z0-9_]", "_", subscriber.lower()) if subscriber else ""


def queue_table(spec: RunSpec, subscriber: str | None = None) -> str:
    """The queue table of one subscriber (default: the spec's own; "" in a work queue)."""
    return pg_name(spec, _part(spec.subscriber if subscriber is None else subscriber))


def dlq_table(spec: RunSpec, subscriber: str | None = None) -> str:
    return pg_name(spec, _part(spec.subscriber if subscriber is None else subscriber) + "_dlq")


def has_retention(retention: Retention) -> bool:
    return bool(retention.max_age or retention.max_messages or retention.max_bytes)


def provision_statements(spec: RunSpec, subscriber: str = "") -> list[sql.Composable]:
    """Run after the queue table exists (with its first_failure column, set by the first
    reject so the first failure is known whichever consumer gives up on the message);
    every statement can run again harmlessly."""
    table = sql.Identifier(queue_table(spec, subscriber))
    dlq = sql.Identifier(dlq_table(spec, subscriber))
    statements: list[sql.Composable] = [
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                payload bytea NOT NULL,
                reason text NOT NULL,
                attempts integer NOT NULL,
                first_failure timestamptz NOT NULL,
                last_failure timestamptz NOT NULL,
                dead_at timestamptz NOT NULL DEFAULT clock_timestamp()
            )"""
        ).format(dlq),
    ]
    if spec.recipe.retention.max_age:
        # Without it every job scans the whole table. It costs each insert a little,
        # which is part of what retention costs PostgreSQL, so only runs with max_age pay.
        index = sql.Identifier(pg_name(spec, _part(subscriber) + "_enqueued_at"))
        statements.append(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (enqueued_at)").format(index, table)
        )
    return statements


class RetentionJob:
    """Deletes what the recipe's retention limit no longer allows and remembers what it
    deleted until a probe has reported it."""

    def __init__(self, spec: RunSpec) -> None:
        self.retention = spec.recipe.retention
        self.total = 0  # rows deleted so far, as DELETE reported them
        self._pending = array("Q")  # packed ids not yet handed to a probe
        self._last = float("-inf")
        table = sql.Identifier(queue_table(spec))
        self._delete, self._params = _delete_statement(table, self.retention)

    def due(self, final: bool) -> bool:
        return final or time.monotonic() - self._last >= JOB_INTERVAL

    def run(self, execute: Execute, final: bool) -> None:
        """Delete in batches: until none is full at the end of a run, for a bounded time
        otherwise (what is left goes next time). Each batch commits on its own and is
        recorded at once, so a failure later loses no name."""
        started = self._last = time.monotonic()
        while True:
            rows = execute(self._delete, self._params, binary=True)
            self.total += len(rows)
            for (head,) in rows:
                header = messages.decode(head)
                if header is not None:
                    self._pending.append(messages.pack(header.producer, header.seq))
            if len(rows) < BATCH or (not final and time.monotonic() - started > LIVE_BUDGET):
                return

    def take(self) -> bytes:
        """The packed ids deleted since the last take."""
        taken, self._pending = self._pending.tobytes(), array("Q")
        return taken


def describe_retention(r: Retention) -> str:
    """The retention mapping, for the run's recorded settings."""
    if not has_retention(r):
        return "none"
    limits = []
    if r.max_age:
        limits.append(f"older than {r.max_age:g} s (enqueued_at, indexed)")
    if r.max_messages:
        limits.append(f"beyond the newest {r.max_messages} rows")
    if r.max_bytes:
        limits.append(f"beyond the newest {r.max_bytes} bytes of payload")
    return (
        f"job every {JOB_INTERVAL:g} s from the engine's probe: DELETE rows "
        + ", or ".join(limits)
        + ", oldest first; victims FOR UPDATE SKIP LOCKED (rows a consumer holds stay);"
        " RETURNING each victim's header to name it"
    )


def _delete_statement(table: sql.Identifier, r: Retention) -> tuple[sql.Composable, dict]:
    # The newest row that falls outside a count or size limit; it and all older rows go.
    # Both scans walk the primary key from the newest row and stop there, so they cost
    # about as much as the limit allows to stay, not as much as the table holds.
    bounds: list[sql.Composable] = []
    params: dict[str, object] = {"batch": BATCH, "head": messages.HEADER_SIZE}
    if r.max_messages:
        params["keep"] = r.max_messages
        bounds.append(sql.SQL("(SELECT id FROM {} ORDER BY id DESC OFFSET %(keep)s LIMIT 1)"))
    if r.max_bytes:
        params["bytes"] = r.max_bytes
        # octet_length reads a TOASTed payload's size from its pointer, without fetching it.
        bounds.append(
            sql.SQL(
                "(SELECT id FROM (SELECT id, sum(octet_length(payload))"
                " OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) AS newer FROM {}) AS kept"
                " WHERE newer > %(bytes)s ORDER BY id DESC LIMIT 1)"
            )
        )
    conditions: list[sql.Composable] = []
    if bounds:
        conditions.append(
            sql.SQL("id <= greatest({})").format(
                sql.SQL(", ").join(b.format(table) for b in bounds)
            )
        )
    if r.max_age:
        params["age"] = r.max_age
        conditions.append(sql.SQL("enqueued_at < now() - make_interval(secs => %(age)s)"))
    query = sql.SQL(
        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {cond}"
        " ORDER BY id LIMIT %(batch)s FOR UPDATE SKIP LOCKED)"
        " RETURNING substring(payload FROM 1 FOR %(head)s)"
    ).format(table=table, cond=sql.SQL(" OR ").join(conditions or [sql.SQL("false")]))
    return query, params


# --- dead letters -----------------------------------------------------------------------


def dead_letter_statement(spec: RunSpec) -> sql.Composable:
    """Move rows to the dead-letter table in one statement; the DELETE comes first, so a
    row another transaction took away yields no dead letter at all.

    Attempts: the larger of the consumer's count and the row's (committed rejects + this
    delivery). First failure: the earlier of the consumer's and the row's, which the first
    reject by any consumer set: the consumer alone only knows the failures it saw."""
    return sql.SQL(
        """WITH gone AS (
            DELETE FROM {table} WHERE id = ANY(%(ids)s::bigint[])
            RETURNING id, payload, attempts, first_failure
        )
        INSERT INTO {dlq} (payload, reason, attempts, first_failure, last_failure)
        SELECT gone.payload, info.reason, greatest(info.attempts, gone.attempts + 1),
            least(gone.first_failure, to_timestamp(info.first_failure)),
            to_timestamp(info.last_failure)
        FROM gone JOIN unnest(
            %(ids)s::bigint[], %(reasons)s::text[], %(attempts)s::integer[],
            %(firsts)s::float8[], %(lasts)s::float8[]
        ) AS info (id, reason, attempts, first_failure, last_failure) USING (id)
        ORDER BY gone.id"""
    ).format(table=sql.Identifier(queue_table(spec)), dlq=sql.Identifier(dlq_table(spec)))


def dead_letter_params(letters: list[tuple[Delivery, DeadLetterInfo]]) -> dict[str, list]:
    # One entry per row: a handle given twice must not make two dead letters of one row.
    by_id = {d.handle: info for d, info in letters}
    infos = list(by_id.values())
    return {
        "ids": list(by_id),
        "reasons": [i.reason for i in infos],
        "attempts": [i.attempts for i in infos],
        "firsts": [i.first_failure for i in infos],
        "lasts": [i.last_failure for i in infos],
    }


def browse_statement(spec: RunSpec, subscriber: str = "") -> sql.Composable:
    return sql.SQL(
        "SELECT id, substring(payload FROM 1 FOR {head}), reason, attempts,"
        " extract(epoch FROM first_failure)::float8, extract(epoch FROM last_failure)::float8"
        " FROM {dlq} ORDER BY id LIMIT %s"
    ).format(head=sql.Literal(BROWSE_BYTES), dlq=sql.Identifier(dlq_table(spec, subscriber)))


def redrive_statement(spec: RunSpec, subscriber: str = "") -> sql.Composable:
    """One statement, so one transaction: the rows leave the dead-letter table, enter the
    queue as new (attempts 0, no failure, enqueued now) in their dead-letter order, and
    the NOTIFY reaches the consumers only if all of it commits."""
    return sql.SQL(
        """WITH moved AS (
            DELETE FROM {dlq} RETURNING id, payload
        ), queued AS (
            INSERT INTO {table} (payload) SELECT payload FROM moved ORDER BY id RETURNING 1
        )
        SELECT count(*), pg_notify(%s, '') FROM queued"""
    ).format(
        table=sql.Identifier(queue_table(spec, subscriber)),
        dlq=sql.Identifier(dlq_table(spec, subscriber)),
    )
