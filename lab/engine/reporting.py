"""What a worker process reports and how: its spec, its reports, the engine's pipes."""

import contextlib
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from lab.brokers.contract import (
    ConsumerClient,
    ProducerClient,
    ReplyReceiver,
    ReplySender,
    RunSpec,
)
from lab.engine.control import Command
from lab.ledger import Export, SeqCollector
from lab.metrics import new_histogram

REPORT_INTERVAL = 0.25
RECONNECT_BACKOFF = (0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class WorkerSpec:
    run: RunSpec
    role: str  # "producer" | "consumer"
    index: int
    share: float = 1.0  # producers: this one's fraction of the recipe's rate
    subscriber: int = 0  # consumers: which of the run's subscriptions (BrokerRun.subs)


@dataclass
class Report:
    role: str
    index: int
    sent: int = 0
    sent_bytes: int = 0
    acked: int = 0
    acked_bytes: int = 0
    failed: int = 0
    backlog: int = 0
    acked_seqs: Export = field(default_factory=dict)
    poison_acked: int = 0
    # (partition, position, producer << 40 | seq) of acked messages, when the run has
    # retention: how the engine names what a position-based retention deleted.
    positions: bytes = b""
    # Counts per whole second of the run clock (t0): the rate profile's real shape.
    sent_by_second: dict[int, int] = field(default_factory=dict)
    acked_by_second: dict[int, int] = field(default_factory=dict)
    processed_by_second: dict[int, int] = field(default_factory=dict)
    publish_hist: bytes = b""
    received: int = 0
    receive_calls: int = 0  # what polling costs: calls per delivered message
    empty_receives: int = 0
    processed: int = 0
    processed_bytes: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    foreign: int = 0  # messages that are not this run's (acked and ignored)
    e2e_hist: bytes = b""
    # Request-reply requesters: the requests' own ledger, beside the messages'.
    replied: int = 0
    timed_out: int = 0
    late_replies: int = 0  # after the request timed out
    duplicate_replies: int = 0  # a request answered again (redelivered to a responder)
    held_back: int = 0  # wanted by the schedule while the window was full: never sent
    round_trip_hist: bytes = b""
    errors: int = 0
    error_text: str = ""


class EngineGone(Exception):
    """The engine's end of a pipe closed: the lab is gone (even kill -9). Nobody is left to
    report to, so the worker ends at once, quietly; its broker redelivers what it held."""


class Reporter:
    def __init__(self, spec: WorkerSpec, out: Connection) -> None:
        self.spec = spec
        self.out = out
        self.report = Report(spec.role, spec.index)
        self.hist = new_histogram()
        self.round_trips = new_histogram() if spec.run.recipe.request_reply else None
        self.seqs = SeqCollector()
        self.due = time.monotonic() + REPORT_INTERVAL

    def error(self, exc: BaseException) -> None:
        self.report.errors += 1
        self.report.error_text = f"{type(exc).__name__}: {exc}"[:300]

    def maybe_send(self, now: float) -> None:
        if now >= self.due:
            self.send("report")
            self.due = now + REPORT_INTERVAL

    def send(self, kind: str) -> None:
        report = self.report
        if self.hist.get_total_count():
            encoded = self.hist.encode()
            if report.role == "producer":
                report.publish_hist = encoded
            else:
                report.e2e_hist = encoded
            self.hist.reset()
        if self.round_trips is not None and self.round_trips.get_total_count():
            report.round_trip_hist = self.round_trips.encode()
            self.round_trips.reset()
        if self.seqs:
            report.acked_seqs = self.seqs.export()
            self.seqs = SeqCollector()
        self.post((kind, report))
        self.report = Report(report.role, report.index)

    def post(self, message: tuple) -> None:
        try:
            self.out.send(message)
        except OSError:
            raise EngineGone from None


def commands(control: Connection) -> list[Command]:
    """Commands waiting on the control pipe."""
    out = []
    try:
        while control.poll():
            out.append(control.recv())
    except (EOFError, OSError):
        raise EngineGone from None
    return out


def count(buckets: dict[int, int], second: int, n: int) -> None:
    buckets[second] = buckets.get(second, 0) + n


def backoff(failures: int) -> None:
    time.sleep(RECONNECT_BACKOFF[min(failures, len(RECONNECT_BACKOFF)) - 1])


def drop(client: ProducerClient | ConsumerClient | ReplySender | ReplyReceiver | None) -> None:
    """Close a client that is being thrown away; whatever it says about that no longer matters."""
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()
