"""PostgreSQL as a queue: a table per run (per subscriber in pub-sub), one INSERT per
batch in, SKIP LOCKED (or polling) out.

adapter.py     provision, probe, teardown, dead letters; the producer
consumers.py   the skip-locked consumer and the polling anti-pattern
dlq.py         table names, the SQL of retention and the dead-letter tables
replies.py     request-reply: the reply table and LISTEN/NOTIFY per requester
native.py      its own cluster (initdb); service.py its container
"""

from typing import TYPE_CHECKING

from lab.brokers.plugin import BrokerPlugin
from lab.brokers.postgres.options import DATABASE, SUPERUSER, PostgresOptions
from lab.endpoints import Endpoint

if TYPE_CHECKING:
    from lab.brokers.contract import BrokerAdapter, RunSpec
    from lab.runtimes.containers import Service
    from lab.runtimes.native.spec import NativeBroker
    from lab.settings import Settings


class PostgresPlugin(BrokerPlugin):
    name = "postgres"
    display = "PostgreSQL"
    order = 40
    patterns = ("work-queue", "pub-sub", "fire-and-forget", "request-reply")
    request_reply = (
        "a reply table keyed by requester: the responder's INSERT and NOTIFY commit together,"
        " the requester LISTENs and DELETEs ... RETURNING its replies"
    )
    fire_and_forget = (
        "asynchronous commit (synchronous_commit = off); the commit's answer is not waited for"
    )
    polling = {
        "long": "a claim that waits for NOTIFY when it finds nothing (LISTEN/NOTIFY)",
        "short": "the claim query once per interval, no LISTEN: the database polled as a queue",
    }
    ports = {"postgres": 432}
    schemes = ("postgresql", "postgres")
    default_port = 5432
    url_example = "postgresql://USER:PASSWORD@HOST:5432/DATABASE"
    options = PostgresOptions
    preload = ("psycopg",)
    container_start_timeout = 60.0

    def endpoint(self, host: str, port: int, secret: str | None) -> Endpoint:
        return Endpoint(
            self.name, "postgresql", host, port, username=SUPERUSER, password=secret, path=DATABASE
        )

    def probe(self, ep: Endpoint, timeout: float) -> str | None:
        import psycopg

        with psycopg.connect(
            host=ep.host,
            port=ep.port,
            user=ep.username,
            password=ep.password,
            dbname=ep.path or DATABASE,
            connect_timeout=max(1, round(timeout)),
        ) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def adapter(self, spec: "RunSpec") -> "BrokerAdapter":
        from lab.brokers.postgres.adapter import PostgresAdapter

        return PostgresAdapter(spec)

    def native(self, settings: "Settings") -> "NativeBroker":
        from lab.brokers.postgres.native import PostgresBroker

        return PostgresBroker(settings, self)

    def service(self, settings: "Settings") -> "Service":
        from lab.brokers.postgres.service import single_node

        return single_node(settings)


PLUGIN = PostgresPlugin()
