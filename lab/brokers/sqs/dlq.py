"""Dead letters: the DLQ's two ways in, browsing it, and redriving it.

In. The main queue's RedrivePolicy (maxReceiveCount = the recipe's max_attempts) is the
server's own dead-lettering: a message received that many times without being deleted
moves to the DLQ on its next receive, as it is, with no reason and no failure times (SQS
keeps none). A consumer that gives up before that copies the message there itself, its
info in `lab-*` message attributes, and then deletes the original: a crash in between
leaves a duplicate dead letter, never none.

Browsing. SQS cannot read a message without receiving it: a browse receives with a short
hold and then makes every letter visible again. It counts a receive for each, which the
DLQ (it has no redrive policy of its own) ignores. SQS hands out no more of a FIFO
message group while some of it is held, so on the service a browse of a FIFO DLQ may
show only the first ten of each group (ElasticMQ shows them all); the consumer's own
copies each get a group of their own for that reason.

Redrive. Receive from the DLQ, SendMessageBatch to the main queue (body only: attempts
start again), then delete from the DLQ. Not StartMessageMoveTask: ElasticMQ 1.7.1 re-sends
moved messages under their old ids, which broke its H2 message store here (a unique-key
violation, after which the store recorded nothing until a restart), and Yandex Message
Queue does not offer it.
"""

from botocore.client import BaseClient

from lab.brokers.contract import (
    BrokerError,
    DeadLetter,
    DeadLetterInfo,
    Delivery,
    RunSpec,
    dead_letter_of,
)
from lab.brokers.sqs import queues
from lab.brokers.sqs.client import ERRORS, broker_error

REASON = "lab-reason"
ATTEMPTS = "lab-attempts"
FIRST_FAILURE = "lab-first-failure"
LAST_FAILURE = "lab-last-failure"
GROUP = "lab-group"  # FIFO: the original's message group, which redrive gives back
BROWSE_HOLD_S = 30  # invisible while a browse runs; made visible again at its end
REDRIVE_HOLD_S = 60
POLL_S = 1  # a real SQS may answer a short poll with nothing while it holds messages


def _number(value: float) -> dict[str, str]:
    return {"DataType": "Number", "StringValue": repr(float(value))}


def copy_to_dlq(
    client: BaseClient, dlq_url: str, spec: RunSpec, letters: list[tuple[Delivery, DeadLetterInfo]]
) -> list[Delivery]:
    """Store a copy of each in the DLQ with its info; return those the server stored."""
    stored: list[Delivery] = []
    for i in range(0, len(letters), queues.BATCH):
        chunk = letters[i : i + queues.BATCH]
        entries = []
        for j, (d, info) in enumerate(chunk):
            entry = {
                "Id": str(j),
                "MessageBody": queues.body(d.payload),
                "MessageAttributes": {
                    REASON: {"DataType": "String", "StringValue": info.reason or "-"},
                    ATTEMPTS: {"DataType": "Number", "StringValue": str(info.attempts)},
                    FIRST_FAILURE: _number(info.first_failure),
                    LAST_FAILURE: _number(info.last_failure),
                },
            }
            if queues.is_fifo(spec):
                # A group of its own: browsing never waits behind another letter.
                entry["MessageGroupId"] = f"dlq-{d.handle.message_id}"
                entry["MessageDeduplicationId"] = f"dlq-{d.handle.message_id}"
                group = d.handle.group or "lab"
                entry["MessageAttributes"][GROUP] = {"DataType": "String", "StringValue": group}
            entries.append(entry)
        try:
            reply = client.send_message_batch(QueueUrl=dlq_url, Entries=entries)
        except ERRORS as exc:
            raise broker_error("SendMessageBatch to the dead-letter queue", exc) from exc
        ok = {s["Id"] for s in reply.get("Successful", [])}
        stored += [d for j, (d, _) in enumerate(chunk) if str(j) in ok]
    return stored


def letter_of(message: dict, spec: RunSpec) -> DeadLetter:
    attrs = message.get("MessageAttributes", {})
    system = message.get("Attributes", {})
    payload = queues.payload(message["Body"])
    if REASON in attrs:
        return dead_letter_of(
            message["MessageId"],
            spec.run_id,
            payload,
            attrs[REASON]["StringValue"],
            int(attrs[ATTEMPTS]["StringValue"]),
            float(attrs[FIRST_FAILURE]["StringValue"]),
            float(attrs[LAST_FAILURE]["StringValue"]),
        )
    # Moved by the redrive policy: SQS moves a message on the receive after its
    # maxReceiveCount-th, and records only when it was first received.
    n = spec.recipe.max_attempts
    first = int(system.get("ApproximateFirstReceiveTimestamp") or system.get("SentTimestamp", 0))
    return dead_letter_of(
        message["MessageId"],
        spec.run_id,
        payload,
        f"redrive policy (maxReceiveCount {n})",
        n,
        first / 1000,
        first / 1000,
    )


def _release(client: BaseClient, url: str, receipts: list[str]) -> None:
    for i in range(0, len(receipts), queues.BATCH):
        entries = [
            {"Id": str(j), "ReceiptHandle": r, "VisibilityTimeout": 0}
            for j, r in enumerate(receipts[i : i + queues.BATCH])
        ]
        client.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def browse(client: BaseClient, dlq_url: str, spec: RunSpec, limit: int) -> list[DeadLetter]:
    found: dict[str, DeadLetter] = {}
    held: list[str] = []
    try:
        while len(found) < limit:
            reply = client.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=min(queues.BATCH, limit - len(found)),
                VisibilityTimeout=BROWSE_HOLD_S,
                WaitTimeSeconds=POLL_S,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            )
            messages = reply.get("Messages", [])
            if not messages:
                break
            for m in messages:
                held.append(m["ReceiptHandle"])
                found.setdefault(m["MessageId"], letter_of(m, spec))
        _release(client, dlq_url, held)
    except ERRORS as exc:
        raise broker_error("reading the dead-letter queue", exc) from exc
    return sorted(found.values(), key=lambda d: (d.first_failure, d.id))


def redrive(client: BaseClient, dlq_url: str, main_url: str, spec: RunSpec) -> int:
    moved = 0
    fifo = queues.is_fifo(spec)
    try:
        while True:
            reply = client.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=queues.BATCH,
                VisibilityTimeout=REDRIVE_HOLD_S,
                WaitTimeSeconds=POLL_S,
                MessageSystemAttributeNames=["MessageGroupId"],
                MessageAttributeNames=[GROUP],
            )
            messages = reply.get("Messages", [])
            if not messages:
                return moved
            entries = []
            for j, m in enumerate(messages):
                entry = {"Id": str(j), "MessageBody": m["Body"]}
                if fifo:
                    own = m.get("MessageAttributes", {}).get(GROUP, {}).get("StringValue")
                    group = own or m.get("Attributes", {}).get("MessageGroupId", "lab")
                    entry["MessageGroupId"] = group
                    entry["MessageDeduplicationId"] = f"redrive-{m['MessageId']}"
                entries.append(entry)
            sent = client.send_message_batch(QueueUrl=main_url, Entries=entries)
            ok = {s["Id"] for s in sent.get("Successful", [])}
            done = [m for j, m in enumerate(messages) if str(j) in ok]
            if done:
                receipts = [m["ReceiptHandle"] for m in done]
                entries = [{"Id": str(j), "ReceiptHandle": r} for j, r in enumerate(receipts)]
                client.delete_message_batch(QueueUrl=dlq_url, Entries=entries)
                moved += len(done)
            if len(done) < len(messages):
                _release(client, dlq_url, [m["ReceiptHandle"] for m in messages if m not in done])
                why = sent.get("Failed", [{}])[0]
                raise BrokerError(
                    f"sqs: redrive stopped after {moved}: {why.get('Code')}: {why.get('Message')}"
                )
    except ERRORS as exc:
        raise broker_error(f"redrive (after {moved} moved)", exc) from exc
