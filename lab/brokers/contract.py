"""The contract every broker adapter keeps, and the types it speaks in.

Engine side (the lab's process):  provision, probe, teardown, settings, close.
Worker side (producer/consumer processes): producer(id), consumer(id).

Adapters move bytes: they never measure latency and never count deliveries; the workers
do that, identically for every broker. They read the lab's message header (lab/messages)
only to name messages the broker itself dropped or dead-lettered.
"""

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from lab import messages
from lab.endpoints import Endpoint
from lab.recipes.model import Recipe


@dataclass(frozen=True)
class RunSpec:
    """What an adapter knows about the run; picklable, handed to every worker."""

    run_id: str
    broker: str
    endpoint: Endpoint  # where clients connect (the chaos proxy, when one runs)
    recipe: Recipe
    admin_endpoint: Endpoint | None = None  # direct, for provisioning and probes
    # The lab's state dir, for adapters that keep a run's state beside the broker's
    # (Kinesis's checkpoints); None: the one LAB_STATE_DIR names.
    state_dir: Path | None = None
    # Where a [stream] stage keeps its features (lab/stream): the store's direct endpoint.
    stream_store: Endpoint | None = None
    # Pub-sub: the subscription a consumer reads (Recipe.subscriber_names); "" otherwise.
    subscriber: str = ""

    @property
    def admin(self) -> Endpoint:
        return self.admin_endpoint or self.endpoint

    def broker_dir(self) -> Path:
        """This broker's directory in the lab's state dir."""
        from lab.settings import Settings

        state = self.state_dir or Settings.from_env().state_dir
        return state / self.broker

    @property
    def options(self) -> Any:
        """The recipe's section of this broker ([kafka], [redis], ...): its own dataclass."""
        return self.recipe.options[self.broker]

    @property
    def queue(self) -> str:
        """Topic / queue / stream name of this run: lab-<run id>."""
        return f"lab-{self.run_id}"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dlq"

    @property
    def group(self) -> str:
        """Consumer group name; in pub-sub, the subscription's."""
        return self.group_of(self.subscriber)

    @property
    def subscribers(self) -> tuple[str, ...]:
        """The run's subscriptions: ("",) unless the recipe is pub-sub."""
        return self.recipe.subscriber_names()

    def reply_to(self, requester: int) -> str:
        """Request-reply: one requester's reply address (stream, topic, queue)."""
        return f"{self.queue}.reply-{requester}"

    def group_of(self, subscriber: str) -> str:
        """The consumer group (subscription) of one subscriber, for provisioning."""
        return f"lab-{self.run_id}-{subscriber or 'consumers'}"


class Outgoing(NamedTuple):
    seq: int
    intended_ns: int
    payload: bytes


class Ack(NamedTuple):
    seq: int
    intended_ns: int
    ok: bool
    error: str | None = None
    # Where the broker put the message, for brokers whose retention deletes by position:
    # Kafka (partition, offset), Redis (0, entry id as ms << 20 | seq). -1: not known.
    partition: int = 0
    position: int = -1


@dataclass(slots=True)
class Delivery:
    payload: bytes
    handle: object  # what the adapter needs to ack or reject this message
    attempts: int = 0  # delivery attempt as the broker counts it (1 = first); 0: it does not


@dataclass(frozen=True)
class DeadLetter:
    """A message in a run's dead-letter destination, as `lab dlq` and the TUI list it."""

    id: str  # the broker's id of the dead letter (offset, entry id, row id, ...)
    run_id: str
    producer: int | None
    seq: int | None
    reason: str
    attempts: int
    first_failure: float  # unix time
    last_failure: float
    payload_head: str  # the first bytes of the payload, printable


def dead_letter_of(
    letter_id: str,
    run_id: str,
    payload: bytes,
    reason: str,
    attempts: int,
    first_failure: float,
    last_failure: float,
) -> DeadLetter:
    """A DeadLetter from what an adapter read from its dead-letter destination."""
    header = messages.decode(payload)
    # Like the right-hand column of a hex dump: printable bytes as they are, others as dots.
    head = "".join(chr(b) if 32 <= b < 127 else "." for b in payload[:32])
    return DeadLetter(
        id=letter_id,
        run_id=run_id,
        producer=header.producer if header else None,
        seq=header.seq if header else None,
        reason=reason,
        attempts=attempts,
        first_failure=first_failure,
        last_failure=last_failure,
        payload_head=head,
    )


@dataclass(frozen=True)
class DeadLetterInfo:
    """Why and when a message was given up on."""

    reason: str
    attempts: int
    first_failure: float  # unix time
    last_failure: float


@dataclass(frozen=True)
class Probe:
    """The broker's own view of the run's queue."""

    # Messages held that consumers have not finished (lag). RabbitMQ can only say how
    # many are ready: deliveries waiting for an ack (up to prefetch x consumers) are not
    # in it while consumers run, and are again once they stop.
    depth: int | None = None
    dead_letters: int | None = None  # messages in the run's dead-letter destination
    retention_dropped: int | None = None  # deleted by retention so far, as the broker says
    # Which messages retention deleted, in one of two forms (see the adapter):
    # `dropped`: packed (producer << 40 | seq) of messages deleted since the previous
    # probe (RabbitMQ from its drop queue, PostgreSQL from DELETE ... RETURNING);
    # `retention_floor`: per partition, the lowest position the broker still holds
    # (Kafka's log start offsets, the first entry id of a Redis stream): every acked
    # message below it is gone.
    dropped: bytes = b""
    retention_floor: dict[int, int] = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    # Pub-sub: the backlog of each subscription (depth is their sum).
    subscriber_depths: dict[str, int] = field(default_factory=dict)


class BrokerError(Exception):
    """A client call failed because of the broker or the network (not a lab bug)."""


class ProducerClient(ABC):
    @abstractmethod
    def send(self, batch: list[Outgoing]) -> None:
        """Hand messages to the broker. May block for backpressure (a full confirm window,
        a full client queue, a synchronous commit); does not wait for acknowledgements
        otherwise (those come from poll). BrokerError: none of the batch counts as acked,
        and whether the broker kept it may be unknown."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Ack]:
        """Wait up to `timeout` seconds for acknowledgements; return those that arrived.
        A message the broker refused, or that timed out, is an Ack with ok=False."""

    @abstractmethod
    def flush(self, timeout: float) -> list[Ack]:
        """Wait until every sent message is acknowledged (or `timeout`); return the acks.
        Messages still unconfirmed at the timeout are simply not in the list."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the connection."""


class SynchronousProducer(ProducerClient):
    """A client whose send() returns with the broker's answer (Redis, PostgreSQL, the
    HTTP APIs): send appends to `_acks`, poll and flush hand them out. Nothing is ever in
    flight between calls, so an empty poll just waits out its timeout."""

    def __init__(self) -> None:
        self._acks: list[Ack] = []

    def poll(self, timeout: float) -> list[Ack]:
        acks, self._acks = self._acks, []
        if not acks and timeout > 0:
            time.sleep(timeout)
        return acks

    def flush(self, timeout: float) -> list[Ack]:
        return self.poll(0)


class ConsumerClient(ABC):
    """The worker acks or rejects every delivery of one receive() before the next call
    (PostgreSQL commits a claim only when all of its rows are settled)."""

    @abstractmethod
    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        """Up to `max_messages` deliveries, waiting at most `timeout` seconds for the first."""

    @abstractmethod
    def ack(self, deliveries: list[Delivery]) -> None:
        """Processing finished: the broker may forget these (commit / ack / delete)."""

    @abstractmethod
    def reject(self, deliveries: list[Delivery]) -> None:
        """Processing failed: the broker delivers them again, with `attempts` counted up
        where the broker (or the adapter, e.g. by republishing with a header) can."""

    @abstractmethod
    def dead_letter(self, letters: list[tuple[Delivery, DeadLetterInfo]]) -> None:
        """Give up on these: put each in the run's dead-letter destination with its info
        (reason, attempts, first and last failure) and remove it from the main queue, in
        that order, so a crash in between duplicates a dead letter rather than losing it."""

    def assign(self, partitions: list[int]) -> None:  # noqa: B027 - optional
        """Brokers without consumer groups (BrokerPlugin.assigns_partitions): the
        partitions this consumer reads from now on, the engine's choice, as the Kinesis
        Client Library's leases are. A partition taken away may still have deliveries in
        flight: they are redelivered by its new owner from the last checkpoint."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the connection."""


class ReplySender(ABC):
    """A responder's way back to the requesters (request-reply)."""

    @abstractmethod
    def send(self, replies: list[tuple[int, bytes]]) -> None:
        """(requester, reply) pairs, to each requester's reply address; returns once the
        broker has them all. The worker replies before it acks the requests, so a crash
        in between answers a request twice rather than never."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the connection."""


class ReplyReceiver(ABC):
    """One requester's reply address (request-reply)."""

    @abstractmethod
    def receive(self, timeout: float) -> list[bytes]:
        """The replies that arrived, waiting up to `timeout` seconds for the first."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the connection."""


class BrokerAdapter(ABC):
    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec

    @abstractmethod
    def provision(self) -> None:
        """Create the run's topic/queue/stream/table, its consumer group, retention and
        dead-letter set-up, and apply the recipe's durability profile."""

    @abstractmethod
    def probe(self, final: bool = False) -> Probe:
        """Depth (lag), dead letters and retention drops as the broker reports them.
        Called twice a second while running: keep it cheap. `final`: exact, once, at end."""

    @abstractmethod
    def teardown(self, keep_dead_letters: bool = False) -> None:
        """Delete what provision created for this run. keep_dead_letters: leave the main
        queue and the dead-letter destination, so `lab dlq` can browse and redrive them."""

    @abstractmethod
    def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Up to `limit` dead letters, oldest first, without consuming them."""

    @abstractmethod
    def redrive(self) -> int:
        """Move every dead letter back to the main queue (attempts start again); return
        how many moved."""

    @abstractmethod
    def settings(self) -> dict[str, str]:
        """The broker settings this run used (durability mapping), for the results."""

    @abstractmethod
    def producer(self, producer_id: int) -> ProducerClient:
        """A producer, created inside a worker process, already connected: the engine
        starts the run's clock once every producer exists, so a connection made lazily on
        the first send would show up as a slow first second."""

    @abstractmethod
    def consumer(self, consumer_id: int) -> ConsumerClient:
        """A consumer in the run's group, created inside a worker process."""

    def replier(self, consumer_id: int) -> ReplySender:
        """Request-reply: how a responder answers, created inside its worker process.
        Brokers whose plugin lists "request-reply" in `patterns` implement it."""
        raise NotImplementedError

    def replies(self, producer_id: int) -> ReplyReceiver:
        """Request-reply: the requester's reply address, read from where it was when
        provision() ran (it exists before the first request)."""
        raise NotImplementedError

    def client_version(self) -> str:
        """Name and version of the client library this adapter uses."""
        return "unknown"

    def losses_expected(self) -> str | None:
        """Why this run's durability setting may lose acknowledged messages when the broker
        dies, in one phrase for people ("fast: ..."); None when it promises to keep them."""
        return None

    def apply_durability(self) -> None:  # noqa: B027 - optional
        """Set the recipe's durability on the broker again, where it lives on the server
        (not in the clients' settings): provision does it, and so does the engine after
        every restart, which may start the broker from its configuration file."""

    def read_settings(self) -> dict[str, str]:
        """The durability settings as the broker reports them now (read back, not as
        intended); {} where the broker cannot be asked."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional
        """Release engine-side connections."""
