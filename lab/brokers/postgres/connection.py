"""Connections of the PostgreSQL clients: one per role, with the run's durability."""

import contextlib

import psycopg

from lab.brokers.contract import BrokerError
from lab.endpoints import Endpoint


def connect(ep: Endpoint, name: str, sync_commit: str = "on", **kw: object) -> psycopg.Connection:
    try:
        return psycopg.connect(
            host=ep.host,
            port=ep.port,
            user=ep.username,
            password=ep.password,
            dbname=ep.path or "postgres",
            application_name=name[:63],
            connect_timeout=5,
            # Per session, so the durability profile needs no change to the server.
            options=f"-c synchronous_commit={sync_commit}",
            **kw,
        )
    except psycopg.Error as exc:
        raise BrokerError(f"postgres: cannot connect as {name}: {exc}") from exc


def close(conn: psycopg.Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            conn.close()
