"""Dead letters: browse them and send them back (`lab dlq`, the TUI's Dead letters screen).

A message that fails processing `max_attempts` times goes to its broker's dead-letter
destination (a topic, a queue, a stream, a table: each adapter says which in its
settings) with the reason, the attempt count and the first and last failure times.
"""

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab import brokers as registry
from lab.brokers.contract import BrokerAdapter, DeadLetter, RunSpec
from lab.errors import LabError
from lab.recipes import parse
from lab.runtimes import BrokerState, Progress, Runtime

# States in which a broker was not running: brought up to read dead letters, it is
# stopped again afterwards.
NOT_RUNNING = (BrokerState.STOPPED, BrokerState.KILLED)

# --- runs whose dead letters were kept --------------------------------------------------
# A run's queue and dead-letter destination outlive the run when it left dead letters,
# so that `lab dlq` can browse and redrive them later, from another process. The lab
# remembers which in its state dir: <state dir>/dead-letters.json.


def _kept_file(state_dir: Path) -> Path:
    return state_dir / "dead-letters.json"


def remember(state_dir: Path, run_id: str, broker: str, recipe: dict, count: int) -> None:
    entry = {"run_id": run_id, "broker": broker, "recipe": recipe, "count": count}
    with _locked(state_dir):
        entries = [e for e in kept(state_dir) if (e["run_id"], e["broker"]) != (run_id, broker)]
        _write(state_dir, [*entries, {**entry, "at": time.time()}])


def forget(state_dir: Path, run_id: str, broker: str) -> None:
    with _locked(state_dir):
        entries = kept(state_dir)
        _write(state_dir, [e for e in entries if (e["run_id"], e["broker"]) != (run_id, broker)])


def kept(state_dir: Path, broker: str | None = None) -> list[dict]:
    """Kept runs, oldest first."""
    try:
        entries = json.loads(_kept_file(state_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [e for e in entries if broker in (None, e["broker"])]


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Brokers of one run finish at the same moment: one registry update at a time."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "dead-letters.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _write(state_dir: Path, entries: list[dict]) -> None:
    tmp = _kept_file(state_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    tmp.replace(_kept_file(state_dir))


@contextmanager
def broker_up(runtime: Runtime, broker: str, progress: Progress) -> Iterator[None]:
    """The broker answering for as long as the block runs: a run that is over stopped the
    brokers it started, while its dead letters stay on their disk. A broker that was not
    running is started (with `progress`, as `lab run` does) and stopped again after."""
    [status] = runtime.status([broker], sample_seconds=0)
    if status.state is BrokerState.HEALTHY:
        yield
        return
    runtime.up([broker], progress)
    try:
        yield
    finally:
        if status.state in NOT_RUNNING:
            progress(broker, "stopping it again")
            runtime.down([broker])


def list_dead_letters(runtime: Runtime, broker: str, run_id: str, limit: int) -> list[DeadLetter]:
    """A run's dead letters, while it runs or after it kept them."""
    adapter = adapter_for_run(runtime, broker, run_id)
    try:
        return adapter.dead_letters(limit)
    finally:
        adapter.close()


def redrive(runtime: Runtime, broker: str, run_id: str) -> int:
    """Send a run's dead letters back to its queue; how many went."""
    adapter = adapter_for_run(runtime, broker, run_id)
    try:
        return adapter.redrive()
    finally:
        # The run stays remembered: its queue now holds the messages, until --purge.
        adapter.close()


def purge(runtime: Runtime, broker: str, run_id: str) -> None:
    """Delete a run's queue and dead letters."""
    adapter = adapter_for_run(runtime, broker, run_id)
    try:
        adapter.teardown()
    finally:
        adapter.close()
    forget(runtime.settings.state_dir, run_id, broker)


def adapter_for_run(runtime: Runtime, broker: str, run_id: str | None) -> BrokerAdapter:
    """The adapter of a run: a running one, or one with kept dead letters (the latest of
    those when run_id is None)."""
    runs = kept(runtime.settings.state_dir, broker)
    if run_id is None:
        if not runs:
            raise LabError(
                f"no run has kept dead letters on {broker}: run one with poison messages"
                " (e.g. lab run poison-pill)"
            )
        entry = runs[-1]
    else:
        # A run that is still going is not in the registry: its names come from its id,
        # and the default recipe is enough to read its dead-letter destination.
        entry = next((e for e in runs if e["run_id"] == run_id), None)
        entry = entry or {"run_id": run_id, "recipe": {}}
    recipe = parse(entry["recipe"], f"run {entry['run_id']}")
    spec = RunSpec(
        entry["run_id"],
        broker,
        runtime.endpoint(broker),
        recipe,
        state_dir=runtime.settings.state_dir,
    )
    return registry.adapter_for(spec)
