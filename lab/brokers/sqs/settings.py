"""What a run's recipe became on SQS, and what the emulator does not do, for the results."""

import math

from lab.brokers.contract import RunSpec
from lab.brokers.sqs import dlq as sqs_dlq
from lab.brokers.sqs import queues, replies

# ElasticMQ (the lab's native and container `sqs`) speaks SQS's API; these parts of the
# service it does not have.
NOT_EMULATED = (
    "SNS (pub-sub's fan-out is the lab's producer sending to each subscriber's queue),"
    " MessageRetentionPeriod (accepted, not applied: nothing expires), MaximumMessageSize"
    " and queue policies (accepted, ignored); no server-side encryption, no throughput"
    " limits (a FIFO queue is not held to SQS's 300 calls/s), no replication (one process:"
    " its H2 file is the only copy); its message counts are exact where SQS's are"
    " approximate"
)


def _retention(spec: RunSpec, period_kept: bool | None) -> str:
    r = spec.recipe.retention
    parts = []
    period = queues.retention_period(spec.recipe)
    if period:
        given = f"{r.max_age:g} s"
        if period != r.max_age:
            given += f" raised to SQS's minimum of {queues.MIN_RETENTION_S} s"
            if r.max_age > queues.MAX_RETENTION_S:
                given = f"{r.max_age:g} s cut to SQS's maximum of {queues.MAX_RETENTION_S} s"
        parts.append(f"MessageRetentionPeriod = {period} s (max_age {given})")
        if period_kept:
            parts.append(
                "the server reports the period back: acked messages sent more than that"
                " before the probe, by the server's clock, count as retention-dropped"
                " (SQS deletes them but never says which)"
            )
        elif period_kept is False:
            parts.append(
                "the server does not report the period back and deletes nothing by age"
                " (ElasticMQ): no message is counted as retention-dropped"
            )
    else:
        parts.append("none (SQS's default MessageRetentionPeriod: 4 days)")
    if r.max_messages or r.max_bytes:
        parts.append("max_messages and max_bytes not applied: SQS has no count or size limit")
    return "; ".join(parts)


def run_settings(spec: RunSpec, period_kept: bool | None) -> dict[str, str]:
    o = spec.options
    kind = "standard queue (at-least-once, best-effort order)"
    if queues.is_fifo(spec):
        group = (
            "one per producer"
            if o.message_group == "producer"
            else (f"one per key (seq mod {spec.recipe.partitions})")
        )
        kind = (
            f"FIFO queue: MessageGroupId {group}, MessageDeduplicationId = producer-seq"
            " (SQS drops a repeat within 5 minutes)"
        )
    n = spec.recipe.max_attempts
    return {
        "queue": f"{queues.main_queue(spec)}: {kind}",
        "durability": (
            "not a queue setting in SQS, so fast and safe run alike: Amazon SQS and Yandex"
            " Message Queue store a message redundantly before they answer; the lab's"
            " ElasticMQ keeps it in memory and in its H2 message store (messages-storage,"
            " WRITE_DELAY=0), written before it answers"
        ),
        "send": (
            f"SendMessageBatch of up to {queues.BATCH}, after a linger of {o.linger * 1000:g} ms;"
            " body = the message in base64 (SQS bodies are text)"
        ),
        "receive": (
            f"ReceiveMessage of up to {queues.BATCH} with long polling (WaitTimeSeconds = the"
            " consumer's wait rounded up to whole seconds), DeleteMessageBatch after processing"
        ),
        "reject": "ChangeMessageVisibilityBatch to 0: delivered again at once",
        "attempts": "ApproximateReceiveCount",
        "redelivery": (
            f"VisibilityTimeout = {math.ceil(o.visibility_timeout)} s: what a crashed consumer"
            " held is delivered again after it"
        ),
        "dead_letters": (
            f"queue {queues.dead_letter_queue(spec)}; RedrivePolicy maxReceiveCount = {n}:"
            f" a message received {n} times is moved by the server on its next receive (no"
            " reason or failure times: SQS keeps none); one given up on earlier is copied"
            f" there by the consumer with {sqs_dlq.REASON} and friends, then deleted"
        ),
        "redrive": (
            "receive from the DLQ, SendMessageBatch to the queue, delete from the DLQ"
            " (not StartMessageMoveTask: ElasticMQ's breaks its message store, YMQ has none)"
        ),
        "retention": _retention(spec, period_kept),
        "emulator_does_not": NOT_EMULATED,
        **_pattern(spec),
    }


def _pattern(spec: RunSpec) -> dict[str, str]:
    """How pub-sub and request-reply are made of queues here."""
    if spec.recipe.pattern == "pub-sub":
        subs = spec.subscribers
        return {
            "fan_out": (
                f"a queue per subscriber ({queues.main_queue(spec, subs[0])}, ...), each with"
                " its own dead-letter queue and the same RedrivePolicy. SNS is not emulated:"
                " the producer does the fan-out, SendMessageBatch of each batch to every"
                f" subscriber's queue at once ({len(subs)} calls a batch, a thread each), and"
                " a message is acked only when every queue took it"
            )
        }
    if spec.recipe.request_reply:
        return {
            "replies": (
                f"a standard queue per requester ({queues.reply_queue(spec, 0)}, ...), made"
                " before the run and deleted after it; requests are sent at once (no linger);"
                f" responders SendMessageBatch up to {queues.BATCH} replies to each requester's"
                " queue before they delete the requests, the body being the request's header"
                " (run, requester, sequence: the correlation id); the requester long-polls its"
                " queue on a thread of its own (ReceiveMessage, WaitTimeSeconds ="
                f" {replies.WAIT_S}) and deletes what it read"
            )
        }
    return {}
