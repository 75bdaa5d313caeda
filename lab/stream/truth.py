"""What the features should be: every acked message's event, counted once.

The ledger says which messages the broker acknowledged; events.py says what each one is;
the producers said when each was meant to be sent. Dead-lettered messages are left out:
their processing failed, so no feature pipeline would count them. Whatever the broker
lost or retention deleted is in the truth and missing from the store: an under-count.
"""

from dataclasses import dataclass, field

from lab.ledger import Ledger
from lab.recipes.model import Stream
from lab.stream.events import EventSource
from lab.stream.windows import Aggregates, WindowSpec, add, rel_ms, statistic


@dataclass
class Truth:
    view: dict[int, list[int]] = field(default_factory=dict)  # key -> [count, sum]
    windows: Aggregates = field(default_factory=dict)
    events: int = 0
    # Acked messages whose event time never reached the engine (a producer killed before
    # it reported it): in the view's truth, not in any window's.
    untimed: int = 0


def compute(
    cfg: Stream, ledger: Ledger, times: dict[int, dict[int, int]], t0_ns: int | None
) -> Truth:
    source = EventSource(cfg)
    spec = WindowSpec.of(cfg.windows)
    truth = Truth()
    dead = ledger.dead_lettered
    for producer, seq in ledger.acked:
        if (producer, seq) in dead:
            continue
        key, value = source.event(producer, seq)
        truth.events += 1
        cell = truth.view.get(key)
        if cell is None:
            truth.view[key] = [1, value]
        else:
            cell[0] += 1
            cell[1] += value
        if spec is None:
            continue
        sent_ns = times.get(producer, {}).get(seq)
        if sent_ns is None or t0_ns is None:
            truth.untimed += 1
            continue
        for start in spec.starts(rel_ms(sent_ns, t0_ns)):
            add(truth.windows, start, key, value)
    return truth


def expected_triggers(truth: Truth, name: str, threshold: float) -> set[tuple[int, int]]:
    """The (window start, key) whose statistic ends above the threshold. Statistics that
    only grow (counts, sums of amounts) cross it exactly once, in any arrival order."""
    return {w for w, cell in truth.windows.items() if statistic(cell, name) > threshold}
