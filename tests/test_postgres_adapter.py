"""PostgreSQL beyond the shared contract: the polling anti-pattern and what it costs,
durability per session, and the live depth estimate."""

import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from lab import messages
from lab.brokers import adapter_for
from lab.brokers.base import RunSpec
from lab.recipes import parse
from tests.test_adapters import drain, produce

pytestmark = pytest.mark.brokers


@pytest.fixture
def make_adapter(session_lab):
    made = []

    def make(**recipe):
        recipe = parse({"consumers": {"prefetch": 50}, **recipe}, "postgres")
        spec = RunSpec(
            "t" + uuid.uuid4().hex[:8], "postgres", session_lab.endpoint("postgres"), recipe
        )
        adapter = adapter_for(spec)
        adapter.provision()
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.teardown()
        adapter.close()


def connect(ep):
    return psycopg.connect(
        host=ep.host, port=ep.port, user=ep.username, password=ep.password, dbname=ep.path
    )


def seqs_of(deliveries):
    return sorted(messages.decode(d.payload).seq for d in deliveries)


def in_thread(fn, *args):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", fn(*args)), daemon=True)
    thread.start()
    return thread, result


def test_polling_mode_produces_and_consumes(make_adapter):
    adapter = make_adapter(postgres={"consume": "polling", "poll_interval": 0.05})
    produce(adapter, 300)
    consumer = adapter.consumer(0)
    try:
        first = []
        while len(first) < 5:
            first += consumer.receive(5 - len(first), 2.0)
        consumer.reject(first)
        seqs = drain(consumer, 300)
    finally:
        consumer.close()
    assert sorted(seqs) == list(range(300))
    assert adapter.probe(final=True).depth == 0
    assert "polling" in adapter.settings()["consume"]


def test_polling_sees_a_new_message_only_at_its_next_poll(make_adapter):
    """LISTEN/NOTIFY wakes a skip-locked consumer at once; a polling consumer finds a
    committed message only when its interval is up, however often it is asked."""
    listening = make_adapter()
    waiter = listening.consumer(0)
    try:
        thread, got = in_thread(waiter.receive, 10, 30.0)
        time.sleep(0.5)  # let it go to sleep on LISTEN
        started = time.monotonic()
        produce(listening, 1)
        thread.join(30)
        woke_after = time.monotonic() - started
    finally:
        waiter.close()
    assert seqs_of(got["value"]) == [0]
    assert woke_after < 15, "woken by NOTIFY, long before its 30 s timeout"

    polling = make_adapter(postgres={"consume": "polling", "poll_interval": 3.0})
    poller = polling.consumer(0)
    try:
        assert poller.receive(10, 0) == []  # polled an empty table: next poll in 3 s
        produce(polling, 1)
        assert polling.probe(final=True).depth == 1
        assert poller.receive(10, 0.2) == [], "the message waits for the next poll"
        assert seqs_of(poller.receive(10, 10.0)) == [0]
    finally:
        poller.close()


def test_two_polling_consumers_can_take_the_same_messages(make_adapter):
    """SELECT then UPDATE is not atomic: two consumers whose statements interleave both
    take the same rows. A table lock makes the interleaving happen every time."""
    adapter = make_adapter(postgres={"consume": "polling", "poll_interval": 0.05})
    produce(adapter, 20)
    first, second = adapter.consumer(0), adapter.consumer(1)
    blocker = connect(adapter.spec.admin)
    try:
        # SHARE lets both SELECTs through and holds both UPDATEs until it is released.
        blocker.execute(
            sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(adapter.spec.table))
        )
        runs = [in_thread(c.receive, 10, 30.0) for c in (first, second)]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            [(waiting,)] = blocker.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND starts_with(application_name, %s)",
                (adapter.spec.table + "-consumer-",),
            ).fetchall()
            if waiting == 2:
                break
            time.sleep(0.05)
        blocker.commit()
        for thread, _ in runs:
            thread.join(30)
        got_first, got_second = (seqs_of(result["value"]) for _, result in runs)
        first.ack(runs[0][1]["value"])
        second.ack(runs[1][1]["value"])
    finally:
        blocker.close()
        first.close()
        second.close()
    assert waiting == 2, "both consumers read the rows before either marked them"
    assert got_first == got_second == list(range(10)), "duplicates: the lesson of this mode"


def test_polling_rows_of_a_dead_consumer_return_after_the_visibility_timeout(make_adapter):
    adapter = make_adapter(postgres={"consume": "polling", "poll_interval": 0.05})
    produce(adapter, 100)
    quitter = adapter.consumer(0)
    held = seqs_of(quitter.receive(50, 5.0))
    quitter.close()
    assert held
    survivor = adapter.consumer(1)
    survivor.visibility_timeout = 3.0
    try:
        started = time.monotonic()
        before = seqs_of(survivor.receive(100, 1.0))
        if time.monotonic() - started < survivor.visibility_timeout:
            assert not set(before) & set(held), "rows marked 'processing' are not new"
        seqs = before + drain(survivor, 100 - len(before), timeout=30)
    finally:
        survivor.close()
    assert sorted(seqs) == list(range(100))


@pytest.mark.parametrize(("durability", "expected"), [("safe", "on"), ("fast", "off")])
def test_durability_sets_synchronous_commit_per_session(make_adapter, durability, expected):
    adapter = make_adapter(durability=durability)
    assert adapter.settings()["synchronous_commit"] == expected
    producer, consumer = adapter.producer(0), adapter.consumer(0)
    try:
        for client in (producer, consumer):
            [(value,)] = client._conn.execute("SHOW synchronous_commit").fetchall()
            assert value == expected
    finally:
        producer.close()
        consumer.close()


def test_live_probe_estimates_a_big_backlog_and_the_final_one_counts(make_adapter):
    adapter = make_adapter()
    produce(adapter, 12_000)
    live, final = adapter.probe(), adapter.probe(final=True)
    assert live.detail["depth"] == "estimate" and live.depth >= 12_000
    assert final.detail["depth"] == "exact" and final.depth == 12_000
    assert "psycopg" in adapter.client_version()
