"""Where the features live: the lab's own Redis (a hash per key) or PostgreSQL (tables).

Each store applies one consumer batch at once, atomically, and says which events were new
(always all of them when not deduplicating) and which window updates pushed a statistic
over the trigger threshold. Atomic per batch is what makes both lessons exact: a naive
view counts a redelivered message twice, exactly once per redelivery; a deduplicated one
(by message id, in the same transaction or script as the update) never does, even when
a consumer dies between its update and its ack. And because the increment that crosses
the threshold is seen by exactly one consumer, a window fires at most once however many
consumers share it.

    Redis       features:<run>:<broker>[:<subscriber>]:view:<key>   hash count, sum, last, last_ms
                features:<run>:<broker>[:<subscriber>]:win:<start>  hash c:<key>, s:<key>
                features:<run>:<broker>[:<subscriber>]:seen         set of message ids (dedupe)
    PostgreSQL  features_<hash>_view (key, count, sum, last, last_ms)
                features_<hash>_win (start_ms, key, count, sum)
                features_<hash>_seen (id)

Pub-sub: each subscription is its own feature pipeline (every subscriber is owed every
message), so each has its own store, named by the subscriber too.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from lab.endpoints import Endpoint

STORES = ("redis", "postgres")
T = TypeVar("T")
STORE_TIMEOUT = 60.0  # s: a paused store holds the consumer up; a dead one must not forever


class Update(NamedTuple):
    ident: int  # producer << 40 | seq: the message id that dedupe keys on
    key: int
    value: int
    t_ms: int  # event time, run clock
    starts: tuple[int, ...]  # the windows it still counts in (late ones left out)


class StoreError(ConnectionError):
    """The view store failed: the consumer treats it like a broker error (reconnects and
    does not ack, so the batch comes again)."""


@dataclass(frozen=True)
class StoreConfig:
    run_id: str
    broker: str
    dedupe: bool
    view: bool
    statistic: str  # "count" | "sum" | "": no trigger
    threshold: float
    subscriber: str = ""  # pub-sub: the subscription whose store this is

    @property
    def name(self) -> str:
        """What the store's keys or tables are named after."""
        parts = (self.run_id, self.broker, self.subscriber)
        return ":".join(p for p in parts if p)


Applied = tuple[list[bool], list[tuple[int, int]]]  # new per update; (update index, start)


def open_store(
    name: str, ep: Endpoint, cfg: StoreConfig, timeout: float = STORE_TIMEOUT
) -> "RedisStore | PostgresStore":
    """`timeout`: the longest one call may take (the engine's live reads keep it short)."""
    if name == "redis":
        return RedisStore(ep, cfg, timeout)
    return PostgresStore(ep, cfg, timeout)


def crossed(before: float, after: float, threshold: float) -> bool:
    return before <= threshold < after


# --- Redis -------------------------------------------------------------------------------

# One batch, atomically. ARGV: prefix, dedupe, view, statistic, threshold, then per update
# id, key, value, t_ms, n, start_1..start_n. Ids stay strings: 56 bits do not fit a double.
_APPLY = """
local p, dedupe, view, stat = ARGV[1], ARGV[2] == '1', ARGV[3] == '1', ARGV[4]
local threshold = tonumber(ARGV[5])
local fresh, fired = {}, {}
local i, n = 6, 0
while i <= #ARGV do
  local id, key = ARGV[i], ARGV[i + 1]
  local value, ms, nw = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  n = n + 1
  local new = true
  if dedupe then new = redis.call('SADD', p .. 'seen', id) == 1 end
  if new then
    fresh[#fresh + 1] = n
    if view then
      local h = p .. 'view:' .. key
      redis.call('HINCRBY', h, 'count', 1)
      redis.call('HINCRBY', h, 'sum', value)
      local last = tonumber(redis.call('HGET', h, 'last_ms') or '-1e18')
      if ms >= last then redis.call('HSET', h, 'last', value, 'last_ms', ms) end
    end
    for w = 1, nw do
      local start = ARGV[i + 4 + w]
      local wh = p .. 'win:' .. start
      local c = redis.call('HINCRBY', wh, 'c:' .. key, 1)
      local s = redis.call('HINCRBY', wh, 's:' .. key, value)
      if stat ~= '' then
        local now, added = c, 1
        if stat == 'sum' then now, added = s, value end
        if now - added <= threshold and now > threshold then
          fired[#fired + 1] = n
          fired[#fired + 1] = start
        end
      end
    end
  end
  i = i + 5 + nw
end
return {fresh, fired}
"""


class RedisStore:
    def __init__(self, ep: Endpoint, cfg: StoreConfig, timeout: float = STORE_TIMEOUT) -> None:
        import redis

        self.cfg = cfg
        self.prefix = f"features:{cfg.name}:"
        self.errors = (redis.RedisError,)
        self.client = redis.Redis(
            host=ep.host,
            port=ep.port,
            password=ep.password,
            db=int(ep.path or 0),
            socket_timeout=timeout,
            socket_connect_timeout=min(10, timeout),
        )
        self._script = self.client.register_script(_APPLY)

    def provision(self) -> None:
        self._call(self.client.ping)

    def apply(self, updates: list[Update]) -> Applied:
        c = self.cfg
        args: list[object] = [self.prefix, int(c.dedupe), int(c.view), c.statistic, c.threshold]
        for u in updates:
            args += [u.ident, u.key, u.value, u.t_ms, len(u.starts), *u.starts]
        fresh_at, fired = self._call(lambda: self._script(args=args))
        fresh = [False] * len(updates)
        for n in fresh_at:
            fresh[n - 1] = True
        crossings = [(int(fired[i]) - 1, int(fired[i + 1])) for i in range(0, len(fired), 2)]
        return fresh, crossings

    def read_view(self) -> dict[int, tuple[int, int]]:
        keys = self._keys("view:")
        rows = self._pipeline([("hmget", k, "count", "sum") for k in keys])
        out = {}
        for k, (count, total) in zip(keys, rows, strict=True):
            out[int(k.rsplit(b":", 1)[1])] = (int(count or 0), int(total or 0))
        return out

    def read_windows(
        self, starts: list[int] | None = None
    ) -> dict[tuple[int, int], tuple[int, int]]:
        """Every window, or those of `starts` only."""
        if starts is None:
            keys = self._keys("win:")
        else:
            keys = [f"{self.prefix}win:{start}".encode() for start in starts]
        out: dict[tuple[int, int], list[int]] = {}
        for name, fields in zip(keys, self._pipeline([("hgetall", k) for k in keys]), strict=True):
            start = int(name.rsplit(b":", 1)[1])
            for field, raw in fields.items():
                kind, key = field.split(b":")
                cell = out.setdefault((start, int(key)), [0, 0])
                cell[0 if kind == b"c" else 1] = int(raw)
        return {k: (c, s) for k, (c, s) in out.items()}

    def teardown(self) -> None:
        keys = self._keys("")
        for i in range(0, len(keys), 1000):
            self._call(lambda chunk=keys[i : i + 1000]: self.client.unlink(*chunk))

    def close(self) -> None:
        self.client.close()

    def _keys(self, kind: str) -> list[bytes]:
        pattern = self.prefix.replace("*", r"\*") + kind + "*"
        return self._call(lambda: list(self.client.scan_iter(match=pattern, count=1000)))

    def _pipeline(self, calls: list[tuple]) -> list:
        def run() -> list:
            pipe = self.client.pipeline(transaction=False)
            for name, *args in calls:
                getattr(pipe, name)(*args)
            return pipe.execute()

        return self._call(run)

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self.errors as exc:
            raise StoreError(f"view store: {exc}") from exc


# --- PostgreSQL --------------------------------------------------------------------------


class PostgresStore:
    def __init__(self, ep: Endpoint, cfg: StoreConfig, timeout: float = STORE_TIMEOUT) -> None:
        import psycopg
        from psycopg import sql

        self.cfg = cfg
        self.ep = ep
        self.timeout = timeout
        self.psycopg = psycopg
        digest = hashlib.blake2b(cfg.name.replace(":", "/").encode(), digest_size=6)
        base = f"features_{digest.hexdigest()}"
        self.view_t, self.win_t, self.seen_t = (
            sql.Identifier(base + s) for s in ("_view", "_win", "_seen")
        )
        self.sql = sql
        self.conn = None

    def _connect(self):
        if self.conn is None or self.conn.closed:
            ep = self.ep
            self.conn = self.psycopg.connect(
                host=ep.host,
                port=ep.port,
                user=ep.username,
                password=ep.password,
                dbname=ep.path,
                connect_timeout=max(1, min(10, round(self.timeout))),
                # Each batch is one explicit transaction (conn.transaction()), nothing else.
                autocommit=True,
                options=f"-c statement_timeout={int(self.timeout * 1000)}",
            )
        return self.conn

    def provision(self) -> None:
        q = self.sql.SQL
        self._tx(
            [
                q(
                    "CREATE TABLE IF NOT EXISTS {} (key int PRIMARY KEY, count bigint NOT NULL,"
                    " sum bigint NOT NULL, last bigint NOT NULL, last_ms bigint NOT NULL)"
                ).format(self.view_t),
                q(
                    "CREATE TABLE IF NOT EXISTS {} (start_ms bigint, key int, count bigint"
                    " NOT NULL, sum bigint NOT NULL, PRIMARY KEY (start_ms, key))"
                ).format(self.win_t),
                q("CREATE TABLE IF NOT EXISTS {} (id bigint PRIMARY KEY)").format(self.seen_t),
            ]
        )

    def apply(self, updates: list[Update]) -> Applied:
        for attempt in range(5):
            try:
                return self._apply(updates)
            except (self.psycopg.errors.DeadlockDetected, self.psycopg.errors.SerializationFailure):
                if attempt == 4:
                    raise StoreError("view store: deadlocked five times in a row") from None
            except self.psycopg.Error as exc:
                self._drop()
                raise StoreError(f"view store: {exc}") from exc
        raise AssertionError("unreachable")

    def _apply(self, updates: list[Update]) -> Applied:
        c, q = self.cfg, self.sql.SQL
        conn = self._connect()
        fresh = [True] * len(updates)
        with conn.transaction():
            if c.dedupe:
                ids = sorted({u.ident for u in updates})
                rows = conn.execute(
                    q(
                        "INSERT INTO {} SELECT unnest(%s::bigint[]) ON CONFLICT DO NOTHING"
                        " RETURNING id"
                    ).format(self.seen_t),
                    (ids,),
                ).fetchall()
                new = {r[0] for r in rows}
                for i, u in enumerate(updates):
                    fresh[i] = u.ident in new
                    new.discard(u.ident)  # the same id twice in one batch counts once
            todo = [(i, u) for i, u in enumerate(updates) if fresh[i]]
            if c.view and todo:
                self._upsert_view(conn, [u for _, u in todo])
            crossings = self._upsert_windows(conn, todo) if todo else []
        return fresh, crossings

    def _upsert_view(self, conn, updates: list[Update]) -> None:  # noqa: ANN001
        per_key: dict[int, list[int]] = {}
        for u in updates:
            cell = per_key.setdefault(u.key, [0, 0, u.value, u.t_ms])
            cell[0] += 1
            cell[1] += u.value
            if u.t_ms >= cell[3]:
                cell[2], cell[3] = u.value, u.t_ms
        keys = sorted(per_key)  # one lock order for every consumer: no deadlocks
        cols = list(zip(*(per_key[k] for k in keys), strict=True))
        conn.execute(
            self.sql.SQL(
                "INSERT INTO {t} AS v SELECT * FROM unnest(%s::int[], %s::bigint[], %s::bigint[],"
                " %s::bigint[], %s::bigint[]) ON CONFLICT (key) DO UPDATE SET"
                " count = v.count + excluded.count, sum = v.sum + excluded.sum,"
                " last = CASE WHEN excluded.last_ms >= v.last_ms"
                " THEN excluded.last ELSE v.last END,"
                " last_ms = greatest(v.last_ms, excluded.last_ms)"
            ).format(t=self.view_t),
            (keys, *(list(col) for col in cols)),
        )

    def _upsert_windows(self, conn, todo: list[tuple[int, Update]]) -> list[tuple[int, int]]:  # noqa: ANN001
        c = self.cfg
        cells: dict[tuple[int, int], list[int]] = {}
        order: dict[tuple[int, int], list[int]] = {}  # update indexes, in batch order
        for i, u in todo:
            for start in u.starts:
                cell = cells.setdefault((start, u.key), [0, 0])
                cell[0] += 1
                cell[1] += u.value
                order.setdefault((start, u.key), []).append(i)
        if not cells:
            return []
        wins = sorted(cells)
        rows = conn.execute(
            self.sql.SQL(
                "INSERT INTO {t} AS w SELECT * FROM unnest(%s::bigint[], %s::int[], %s::bigint[],"
                " %s::bigint[]) ON CONFLICT (start_ms, key) DO UPDATE SET"
                " count = w.count + excluded.count, sum = w.sum + excluded.sum"
                " RETURNING start_ms, key, count, sum"
            ).format(t=self.win_t),
            (
                [w[0] for w in wins],
                [w[1] for w in wins],
                [cells[w][0] for w in wins],
                [cells[w][1] for w in wins],
            ),
        ).fetchall()
        if not c.statistic:
            return []
        crossings = []
        values = {i: u.value for i, u in todo}
        for start, key, count, total in rows:
            added = cells[(start, key)]
            now = count if c.statistic == "count" else total
            before = now - (added[0] if c.statistic == "count" else added[1])
            if not crossed(before, now, c.threshold):
                continue
            # Which of this batch's events took it over: walk them in arrival order.
            running = before
            for i in order[(start, key)]:
                running += 1 if c.statistic == "count" else values[i]
                if running > c.threshold:
                    crossings.append((i, start))
                    break
        return crossings

    def read_view(self) -> dict[int, tuple[int, int]]:
        rows = self._query(self.sql.SQL("SELECT key, count, sum FROM {}").format(self.view_t))
        return {k: (n, s) for k, n, s in rows}

    def read_windows(
        self, starts: list[int] | None = None
    ) -> dict[tuple[int, int], tuple[int, int]]:
        """Every window, or those of `starts` only."""
        query = self.sql.SQL("SELECT start_ms, key, count, sum FROM {}").format(self.win_t)
        args: tuple = ()
        if starts is not None:
            query = self.sql.SQL("{} WHERE start_ms = ANY(%s::bigint[])").format(query)
            args = (list(starts),)
        return {(w, k): (n, s) for w, k, n, s in self._query(query, args)}

    def teardown(self) -> None:
        q = self.sql.SQL
        self._tx(
            [q("DROP TABLE IF EXISTS {}").format(t) for t in (self.view_t, self.win_t, self.seen_t)]
        )

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def _tx(self, statements: list) -> None:
        try:
            conn = self._connect()
            with conn.transaction():
                for s in statements:
                    conn.execute(s)
        except self.psycopg.Error as exc:
            self._drop()
            raise StoreError(f"view store: {exc}") from exc

    def _query(self, query, args: tuple = ()) -> list[tuple]:  # noqa: ANN001
        try:
            conn = self._connect()
            with conn.transaction():
                return conn.execute(query, args or None).fetchall()
        except self.psycopg.Error as exc:
            self._drop()
            raise StoreError(f"view store: {exc}") from exc
