"""Dead letters: browse them and send them back (`lab dlq`, the TUI's Dead letters screen).

A message that fails processing `max_attempts` times goes to its broker's dead-letter
destination with the reason, the attempt count and the first and last failure times:
Kafka a `<topic>.dlq` topic, RabbitMQ a dead-letter exchange and queue, Redis a
dead-letter stream, PostgreSQL a dead-letter table.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the broker's id of the dead letter (offset, entry id, row id, ...)
    run_id: str
    producer: int | None
    seq: int | None
    reason: str
    attempts: int
    first_failure: float  # unix time
    last_failure: float
    payload_head: str  # the first bytes of the payload, printable
