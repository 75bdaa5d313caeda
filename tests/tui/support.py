"""Shared by the TUI tests (no tests here): recorded data, a still feed, waiting on the app."""

import asyncio
import dataclasses
import functools
import queue
import time

from lab.brokers.contract import DeadLetter
from lab.faults import Fault, Scope
from lab.recipes import parse
from lab.results import RunResult
from lab.runtimes import BrokerState, BrokerStatus
from tests.helpers import DATA
from tui.feed import RunInfo, snapshots_from_result

# A real 12 s quickstart through all four brokers (native runtime), recorded with `lab run`.
RECORDED = DATA / "replay-quickstart.json"


def recorded() -> RunResult:
    return RunResult.load(RECORDED)


class StillFeed:
    """Recorded Snapshots up to a moment, then silence: the Run screen as it looks
    mid-run, for pictures and for checking which command each key sends.

    `react`: after each fault, one more Snapshot that shows it in force on its broker, as
    the engine's next Snapshot would (a paused state, the network faults in force)."""

    def __init__(self, result: RunResult, upto: int, live: bool = True, react: bool = False):
        self.result = None
        self.snapshots = snapshots_from_result(result)[:upto]
        self.info = RunInfo(tuple(result.brokers), result.recipe, live=live)
        self.commands: list = []
        self.closed = False
        self.react = react
        self._queues: list[queue.Queue] = []

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue()
        for snap in self.snapshots:
            q.put(snap)
        self._queues.append(q)
        return q

    def command(self, cmd: object) -> None:
        self.commands.append(cmd)
        if self.react and isinstance(cmd, Fault):
            last = self.snapshots[-1]
            brokers = tuple(
                _in_force(b, cmd) if b.broker == cmd.broker else b for b in last.brokers
            )
            snap = dataclasses.replace(last, seq=last.seq + 1, brokers=brokers, events=())
            self.snapshots.append(snap)
            for q in self._queues:
                q.put(snap)

    def close(self) -> None:
        self.closed = True


def _in_force(b, fault: Fault):
    network = dict(b.network)
    state = {"pause": "paused", "resume": "healthy", "kill": "killed"}.get(fault.action, b.state)
    if fault.action == "heal":
        network = {}
    elif fault.kind.scope is Scope.NETWORK and fault.action != "reset":
        network[fault.action] = {k: fault.arg(k) for k in fault.kind.params}
    return dataclasses.replace(b, state=state, network=network)


def pilot_test(test):
    """Run an async Pilot test on its own event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return run


async def until(pilot, predicate, timeout: float = 30.0, what: object = "") -> None:
    """Let the app run until `predicate()` holds; fail after `timeout` seconds, saying
    what was awaited (`what` may be a callable that describes the state then)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what or predicate
            raise AssertionError(f"timed out after {timeout:g}s waiting for {said}")
        await pilot.pause(0.05)


def fixed_statuses(brokers: list[str]) -> list[BrokerStatus]:
    """Broker states as the Start screen shows them, fixed for pictures."""
    table = {
        "kafka": (BrokerState.STOPPED, "kafka://127.0.0.1:17092", "4.1.1", ""),
        "rabbitmq": (BrokerState.KILLED, "amqp://lab:***@127.0.0.1:17672", "3.10.8", "killed"),
        "redis": (BrokerState.HEALTHY, "redis://127.0.0.1:17379/0", "7.0.15", ""),
        "postgres": (
            BrokerState.HEALTHY,
            "postgresql://lab:***@127.0.0.1:17432/postgres",
            "15.18",
            "",
        ),
        "sqs": (BrokerState.STOPPED, "sqs://127.0.0.1:17324", "elasticmq 1.7.1", ""),
        "pubsub": (BrokerState.STOPPED, "pubsub://127.0.0.1:17085/broker-lab", "", ""),
        "kinesis": (BrokerState.STOPPED, "kinesis://127.0.0.1:17567", "kinesalite 3.3.3", ""),
    }
    return [
        BrokerStatus(b, "native", table[b][0], table[b][1], version=table[b][2], detail=table[b][3])
        for b in brokers
    ]


def fixed_recipes() -> list:
    return [
        parse(
            {
                "name": "quickstart",
                "description": "A small steady stream through every broker.",
                "duration": "20s",
                "rate": {"rate": 500},
            }
        ),
        parse(
            {
                "name": "morning-rush",
                "description": "A working day compressed: half the messages in the first hour.",
                "duration": "80s",
                "rate": {"profile": "curve", "rate": 100, "curve": [7, 1, 1, 1, 1, 1, 1, 1]},
                "consumers": {"count": 2, "processing_time": "10ms"},
            }
        ),
    ]


def fixed_dead_letters() -> list[DeadLetter]:
    base = 1_764_000_000.0
    return [
        DeadLetter(
            id=f"1764000000{i:03d}-0",
            run_id="20261128-053140-quickstart-9c24",
            producer=0,
            seq=100 + i * 37,
            reason="poison message: processing failed",
            attempts=3,
            first_failure=base + i,
            last_failure=base + i + 2.5,
            payload_head=f"LAB1 p0 #{100 + i * 37} poison.....",
        )
        for i in range(6)
    ]
