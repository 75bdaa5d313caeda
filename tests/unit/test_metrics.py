"""The batch histogram record is HdrHistogram's record_value, value for value."""

import random

from lab.metrics import HIGHEST_US, new_histogram, record_all_us, record_us


def test_a_batch_records_what_one_at_a_time_records():
    rng = random.Random(7)
    values = [rng.randint(-5_000, 5_000_000) for _ in range(5_000)]
    values += [0, 999, 1000, 2_047_999, 10**16, HIGHEST_US * 1000]
    one, batch = new_histogram(), new_histogram()
    for ns in values:
        record_us(one, ns)
    for i in range(0, len(values), 37):
        record_all_us(batch, values[i : i + 37])
    record_all_us(batch, [])
    assert list(batch.counts) == list(one.counts)
    assert batch.get_total_count() == one.get_total_count() == len(values)
    assert (batch.get_min_value(), batch.get_max_value()) == (
        one.get_min_value(),
        one.get_max_value(),
    )
    assert batch.get_value_at_percentile(99) == one.get_value_at_percentile(99)
    assert batch.encode() == one.encode()
