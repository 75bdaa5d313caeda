"""The ledger on its own, with hand-made sequences."""

from lab.ledger import CHUNK_SEQS, Ledger, SeqCollector


def collect(*pairs):
    c = SeqCollector()
    for producer, seq in pairs:
        c.add(producer, seq)
    return c


def acked(ledger, producer, seqs):
    ledger.record_acked(collect(*[(producer, s) for s in seqs]).export(), produced=len(seqs))


def delivered(ledger, producer, seqs):
    c = collect(*[(producer, s) for s in seqs])
    ledger.record_delivered(c.export(), c.repeats)


def test_every_message_once():
    ledger = Ledger()
    acked(ledger, 0, range(1000))
    delivered(ledger, 0, range(1000))
    counts = ledger.counts(depth=0, final=True)
    assert (counts.acked, counts.delivered, counts.duplicates, counts.lost) == (1000, 1000, 0, 0)
    assert counts.adds_up()


def test_out_of_order_and_across_consumers():
    ledger = Ledger()
    acked(ledger, 0, range(10))
    delivered(ledger, 0, [9, 7, 5, 3, 1])  # one consumer, reversed, odd
    delivered(ledger, 0, [0, 8, 2, 6, 4])  # another, even
    counts = ledger.counts(depth=0, final=True)
    assert counts.delivered == 10 and counts.duplicates == 0 and counts.lost == 0


def test_duplicates_within_and_across_reports():
    ledger = Ledger()
    acked(ledger, 0, range(5))
    delivered(ledger, 0, [0, 1, 1, 2])  # 1 twice in one batch
    delivered(ledger, 0, [2, 3, 4])  # 2 again, later
    counts = ledger.counts(depth=0, final=True)
    assert counts.delivered == 5
    assert counts.duplicates == 2
    assert counts.adds_up()


def test_gaps_are_in_flight_while_running_and_lost_at_the_end():
    ledger = Ledger()
    acked(ledger, 0, range(100))
    delivered(ledger, 0, [s for s in range(100) if s not in (10, 11, 50)])
    live = ledger.counts()
    assert live.in_flight == 3 and live.lost == 0
    # The broker says it still holds one message: one is in flight, two are lost.
    final = ledger.counts(depth=1, final=True)
    assert (final.in_flight, final.lost) == (1, 2)
    assert final.adds_up()
    assert ledger.delivered.missing_ranges(0, 100) == [(10, 11), (50, 50)]


def test_producers_are_told_apart():
    ledger = Ledger()
    acked(ledger, 0, range(3))
    acked(ledger, 1, range(3))
    delivered(ledger, 0, range(3))
    delivered(ledger, 1, [0, 2])
    counts = ledger.counts(depth=0, final=True)
    assert counts.delivered == 5 and counts.lost == 1
    assert (1, 1) not in ledger.delivered and (0, 1) in ledger.delivered


def test_dead_lettered_and_retention_dropped_are_not_lost():
    ledger = Ledger()
    acked(ledger, 0, range(10))
    delivered(ledger, 0, range(6))
    ledger.record_dead_lettered(collect((0, 6), (0, 7)).export())
    ledger.record_retention_dropped(collect((0, 8)).export())
    counts = ledger.counts(depth=0, final=True)
    assert (counts.delivered, counts.dead_lettered, counts.retention_dropped, counts.lost) == (
        6,
        2,
        1,
        1,
    )
    assert counts.adds_up()


def test_delivered_without_an_ack_is_counted_apart():
    """A send whose ack never reached the producer, yet the broker kept the message."""
    ledger = Ledger()
    acked(ledger, 0, [0, 1])
    delivered(ledger, 0, [0, 1, 2])
    counts = ledger.counts(depth=0, final=True)
    assert counts.acked == 2 and counts.delivered == 2 and counts.unacked_delivered == 1
    assert counts.adds_up()


def test_sequences_across_chunk_boundaries():
    ledger = Ledger()
    seqs = [CHUNK_SEQS - 2, CHUNK_SEQS - 1, CHUNK_SEQS, 3 * CHUNK_SEQS + 5]
    acked(ledger, 0, seqs)
    delivered(ledger, 0, seqs[:3])
    counts = ledger.counts(depth=0, final=True)
    assert counts.acked == 4 and counts.delivered == 3 and counts.lost == 1


def test_an_ack_reported_twice_is_a_problem():
    ledger = Ledger()
    acked(ledger, 0, [1, 2])
    acked(ledger, 0, [2])
    assert ledger.problems and "acked twice" in ledger.problems[0]
