"""Where a broker's part of a run is, and what that makes the whole run.

waiting -> starting -> connecting -> warmup -> running -> draining -> stopping -> done
(failed: it could not start; skipped: the run was stopped before its turn)
"""

from collections.abc import Iterable
from enum import StrEnum


class Phase(StrEnum):
    WAITING = "waiting"  # for its turn (sequential mode) or the clock's first tick
    STARTING = "starting"  # the broker is brought up, the run's queue provisioned
    CONNECTING = "connecting"  # workers connect; producers wait for the clock zero
    WARMUP = "warmup"  # producing; not yet in the summary's figures
    RUNNING = "running"
    DRAINING = "draining"  # producers done; consumers catch up
    STOPPING = "stopping"  # workers send their last report
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


# Phases in which a broker's workers exist and faults, commands and schedules apply.
ACTIVE = frozenset({Phase.CONNECTING, Phase.WARMUP, Phase.RUNNING, Phase.DRAINING})
PRODUCING = frozenset({Phase.WARMUP, Phase.RUNNING})
TERMINAL = frozenset({Phase.DONE, Phase.FAILED, Phase.SKIPPED})


def run_phase(phases: Iterable[str]) -> Phase:
    """The run's phase from its brokers': running while any produces, draining while any
    drains, done when all are over, starting before that."""
    phases = [Phase(p) for p in phases]
    if any(p in PRODUCING for p in phases):
        return Phase.RUNNING
    if any(p in (Phase.DRAINING, Phase.STOPPING) for p in phases):
        return Phase.DRAINING
    if all(p in TERMINAL for p in phases):
        return Phase.DONE
    return Phase.STARTING
