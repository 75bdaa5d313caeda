"""PostgreSQL beyond the shared contract: the polling anti-pattern and what it costs,
durability per session, the live depth estimate, the retention job, the dead-letter
table, pub-sub's table per subscriber and request-reply's reply table."""

import dataclasses
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from lab import messages
from lab.brokers import adapter_for
from lab.brokers.contract import DeadLetterInfo, RunSpec
from lab.brokers.postgres.dlq import pg_name
from lab.recipes import parse
from tests.brokers.helpers import (
    dead_letter_some,
    drain,
    dropped_ids,
    new_adapter,
    produce,
    provisioned,
    receive,
)

pytestmark = pytest.mark.brokers


@pytest.fixture
def make_adapter(session_lab):
    made = []

    def make(**recipe):
        adapter = new_adapter(session_lab, "postgres", {"consumers": {"prefetch": 50}, **recipe})
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
            sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(pg_name(adapter.spec)))
        )
        runs = [in_thread(c.receive, 10, 30.0) for c in (first, second)]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            [(waiting,)] = blocker.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND starts_with(application_name, %s)",
                (pg_name(adapter.spec) + "-consumer-",),
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


# --- retention and dead letters ----------------------------------------------------------


def dropped_seqs(probe) -> set[int]:
    return dropped_ids(probe, [])


def backdate(adapter, seconds):
    """Make every row of the queue look `seconds` old, so age limits need no waiting."""
    with connect(adapter.spec.admin) as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET enqueued_at = now() - make_interval(secs => %s)").format(
                sql.Identifier(pg_name(adapter.spec))
            ),
            (seconds,),
        )


def table_exists(adapter, name):
    with connect(adapter.spec.admin) as conn:
        [(oid,)] = conn.execute("SELECT to_regclass(%s)", (name,)).fetchall()
    return oid is not None


def test_age_retention_names_the_expired_rows(make_adapter):
    adapter = make_adapter(retention={"max_age": "60s"})
    assert adapter.probe().retention_dropped == 0
    produce(adapter, 30)
    backdate(adapter, 3600)
    produce(adapter, 20, first=30)
    probe = adapter.probe(final=True)
    assert dropped_seqs(probe) == set(range(30)), "exactly the expired rows, by name"
    assert probe.retention_dropped == 30 and probe.depth == 20
    assert adapter.probe(final=True).dropped == b"", "each deletion is reported once"
    consumer = adapter.consumer(0)
    try:
        assert sorted(drain(consumer, 20)) == list(range(30, 50))
    finally:
        consumer.close()
    assert "older than 60 s" in adapter.settings()["retention"]


def test_size_retention_keeps_the_newest_bytes(make_adapter):
    adapter = make_adapter(retention={"max_bytes": 1000})
    produce(adapter, 50)  # 100 bytes each: the newest 10 fit
    probe = adapter.probe(final=True)
    assert dropped_seqs(probe) == set(range(40))
    assert probe.retention_dropped == 40 and probe.depth == 10


def test_retention_leaves_rows_a_consumer_holds_until_it_lets_go(make_adapter):
    adapter = make_adapter(retention={"max_age": "60s"})
    produce(adapter, 100)
    backdate(adapter, 3600)
    consumer = adapter.consumer(0)
    try:
        held = receive(consumer, 20)
        assert seqs_of(held) == list(range(20))
        # A job that waited for the claim would never return while the claim is open.
        thread, result = in_thread(adapter.probe, True)
        thread.join(60)
        assert "value" in result, "the retention job blocked on rows a consumer holds"
        assert dropped_seqs(result["value"]) == set(range(20, 100))
        consumer.reject(held)  # committed: the rows are back in the queue, still old
        probe = adapter.probe(final=True)
    finally:
        consumer.close()
    assert dropped_seqs(probe) == set(range(20))
    assert probe.retention_dropped == 100 and probe.depth == 0


def test_probes_report_each_deletion_once(make_adapter):
    adapter = make_adapter(retention={"max_messages": 5})
    produce(adapter, 10)
    first = adapter.probe()  # the first live probe runs the job
    produce(adapter, 10, first=10)
    second = adapter.probe()  # at once after it: too early for another run
    assert dropped_seqs(first) == set(range(5))
    if second.retention_dropped == 5:
        assert second.dropped == b""
    final = adapter.probe(final=True)  # the final probe always runs it
    assert final.retention_dropped == 15
    assert dropped_seqs(second) | dropped_seqs(final) == set(range(5, 15))


def test_two_consumers_dead_letter_from_their_own_claims(make_adapter):
    adapter = make_adapter()
    produce(adapter, 20)
    first, second = adapter.consumer(0), adapter.consumer(1)
    info = DeadLetterInfo("poison: processing failed", 3, 1000.0, 1002.5)
    try:
        mine, theirs = receive(first, 10), receive(second, 10)  # both claims stay open
        assert not set(seqs_of(mine)) & set(seqs_of(theirs))
        doomed = set()
        for consumer, batch in ((first, mine), (second, theirs)):
            dead = [d for d in batch if messages.decode(d.payload).seq % 4 == 0]
            doomed |= set(seqs_of(dead))
            consumer.dead_letter([(d, info) for d in dead])
        for consumer, batch in ((first, mine), (second, theirs)):
            consumer.ack([d for d in batch if messages.decode(d.payload).seq not in doomed])
    finally:
        first.close()
        second.close()
    assert doomed == {0, 4, 8, 12, 16}
    letters = adapter.dead_letters(100)
    assert sorted(letter.seq for letter in letters) == sorted(doomed)
    assert [letter.id for letter in letters] == sorted((letter.id for letter in letters), key=int)
    probe = adapter.probe(final=True)
    assert probe.dead_letters == 5 and probe.depth == 0
    assert probe.retention_dropped is None, "no retention in this run"


def test_first_failure_is_the_first_reject_whichever_consumer_gives_up(make_adapter):
    adapter = make_adapter()
    produce(adapter, 1)
    first, second = adapter.consumer(0), adapter.consumer(1)
    try:
        before = time.time()
        first.reject(receive(first, 1))
        after = time.time()
        [again] = receive(second, 1)
        assert again.attempts == 2
        # The second consumer saw one failure only, later than the first one.
        own = DeadLetterInfo("poison", 1, after + 5, after + 6)
        second.dead_letter([(again, own)])
    finally:
        first.close()
        second.close()
    [letter] = adapter.dead_letters(10)
    assert before - 0.001 <= letter.first_failure <= after + 0.001, "the row's first reject"
    assert letter.last_failure == pytest.approx(after + 6)
    assert letter.attempts == 2, "the row counted both deliveries"


@pytest.mark.parametrize("consume", ["skip-locked", "polling"])
def test_redrive_then_consume(make_adapter, consume):
    adapter = make_adapter(postgres={"consume": consume, "poll_interval": 0.05})
    produce(adapter, 5)
    consumer = adapter.consumer(0)
    try:
        batch = receive(consumer, 5)
        consumer.dead_letter([(d, DeadLetterInfo("poison", 3, 1.0, 2.0)) for d in batch])
        assert adapter.probe(final=True).dead_letters == 5
        # Idle skip-locked consumers sleep on LISTEN: the redrive must wake them.
        with connect(adapter.spec.admin) as listener:
            listener.autocommit = True
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(pg_name(adapter.spec))))
            assert adapter.redrive() == 5
            woken = list(listener.notifies(timeout=30, stop_after=1))
        assert [n.channel for n in woken] == [pg_name(adapter.spec)]
        back = receive(consumer, 5)
        assert seqs_of(back) == list(range(5))
        assert all(d.attempts == 1 for d in back), "attempts start again"
        consumer.ack(back)
    finally:
        consumer.close()
    assert adapter.dead_letters(10) == []
    assert adapter.probe(final=True).depth == 0
    assert adapter.redrive() == 0


def test_a_later_instance_browses_redrives_and_tears_down(make_adapter):
    adapter = make_adapter(retention={"max_age": "60s"})
    produce(adapter, 3)
    dead_letter_some(adapter, 3, [0], DeadLetterInfo("test", 1, 1.0, 1.0))
    produce(adapter, 2, first=3)
    adapter.teardown(keep_dead_letters=True)
    adapter.close()
    backdate(adapter, 3600)
    later = adapter_for(adapter.spec)  # as `lab dlq` makes it, in another process
    try:
        assert [letter.seq for letter in later.dead_letters(10)] == [0]
        probe = later.probe(final=True)  # `lab dlq` counts its letters this way
        assert (probe.dead_letters, probe.depth) == (1, 2), "a browsing instance deletes nothing"
        assert probe.retention_dropped is None
        assert later.redrive() == 1
        assert later.probe(final=True).depth == 3
    finally:
        later.teardown()
        later.close()
    for name in (pg_name(adapter.spec), pg_name(adapter.spec) + "_dlq"):
        assert not table_exists(adapter, name)


def test_a_long_run_id_still_gets_distinct_tables_and_a_channel(session_lab):
    """PostgreSQL cuts identifiers at 63 bytes and pg_notify refuses longer channels: a
    long recipe name must neither break producing nor make the dead-letter table the
    queue table."""
    from lab.brokers.postgres.dlq import dlq_table, pg_name

    run_id = "20250101-000000-" + "a-recipe-name-long-enough-to-pass-the-limit-" + uuid.uuid4().hex
    recipe = parse({"retention": {"max_age": "60s"}}, "long")
    spec = RunSpec(run_id, "postgres", session_lab.endpoint("postgres"), recipe)
    with provisioned(adapter_for(spec)) as adapter:
        names = [pg_name(spec), dlq_table(spec), pg_name(spec, "_enqueued_at")]
        assert len(set(names)) == 3 and all(len(n) <= 63 for n in names)
        assert all(table_exists(adapter, n) for n in names)
        produce(adapter, 3)
        dead_letter_some(adapter, 3, [0], DeadLetterInfo("test", 1, 1.0, 1.0))
        assert [letter.seq for letter in adapter.dead_letters(10)] == [0]
        assert adapter.redrive() == 1
        assert adapter.probe(final=True).depth == 1
    assert not any(table_exists(adapter, n) for n in names)


def test_pub_sub_copies_each_batch_into_every_subscriber_table(make_adapter):
    """A delivery row per subscriber: each subscriber's table is a work queue of its own,
    with competing consumers and per-message retries, and its count is its lag."""
    adapter = make_adapter(pattern="pub-sub", subscribers={"count": 2, "slow": 1})
    produce(adapter, 50)
    probe = adapter.probe()
    assert probe.subscriber_depths == {"sub-1": 50, "slow-1": 50} and probe.depth == 100

    def consumer(subscriber, consumer_id):
        return adapter_for(dataclasses.replace(adapter.spec, subscriber=subscriber)).consumer(
            consumer_id
        )

    fast = consumer("sub-1", 0)
    try:
        assert sorted(drain(fast, 50)) == list(range(50))
    finally:
        fast.close()
    assert adapter.probe().subscriber_depths == {"sub-1": 0, "slow-1": 50}

    first, second = consumer("slow-1", 0), consumer("slow-1", 1)
    try:
        a, b = receive(first, 20), receive(second, 20)
        assert not set(seqs_of(a)) & set(seqs_of(b)), "SKIP LOCKED: no row claimed twice"
        first.reject(a)  # retried within slow-1 alone
        second.ack(b)
        again = receive(first, 30)
        assert {d.attempts for d in again if messages.decode(d.payload).seq in seqs_of(a)} == {2}
        first.ack(again)
    finally:
        first.close()
        second.close()
    final = adapter.probe(final=True)
    assert final.subscriber_depths == {"sub-1": 0, "slow-1": 0}
    assert "per subscriber" in adapter.settings()["pub_sub"]
    adapter.teardown()
    for name in (pg_name(adapter.spec, "_sub_1"), pg_name(adapter.spec, "_slow_1_dlq")):
        assert not table_exists(adapter, name)


def test_a_requester_sleeps_on_listen_until_its_reply_commits(make_adapter):
    adapter = make_adapter(pattern="request-reply", producers={"count": 2})
    mine, theirs = adapter.replies(0), adapter.replies(1)
    replier = adapter.replier(0)
    try:
        assert mine.receive(0) == []
        thread, got = in_thread(mine.receive, 30.0)
        time.sleep(0.5)  # asleep on LISTEN
        started = time.monotonic()
        replier.send([(0, b"to-0"), (1, b"to-1"), (0, b"to-0 again")])
        thread.join(30)
        woke_after = time.monotonic() - started
        assert woke_after < 15, "woken by NOTIFY, long before its 30 s timeout"
        assert sorted(got["value"] + mine.receive(0)) == [b"to-0", b"to-0 again"]
        assert theirs.receive(0) == [b"to-1"], "each requester reads its own replies"
        assert mine.receive(0) == theirs.receive(0) == [], "read replies are deleted"
    finally:
        for client in (mine, theirs, replier):
            client.close()
    adapter.teardown()
    assert not table_exists(adapter, pg_name(adapter.spec, "_replies"))
