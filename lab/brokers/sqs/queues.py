"""A run's queues: their names, attributes and what SQS puts in a message.

A work queue has a queue and its dead-letter queue; pub-sub a pair for each subscriber
(`<run>-sub-1`, `<run>-sub-1-dlq`, ...), which the producer fills itself, since the lab
runs no SNS; request-reply adds a standard queue per requester for its replies.

SQS bodies are text (XML characters only), and the lab's messages are bytes: a body is the
message in base64, a third larger on the wire. Names allow letters, digits, `-` and `_`,
at most 80 characters with the `.fifo` that FIFO queues must end in.
"""

import base64
import hashlib
import json
import math
import re
from email.utils import parsedate_to_datetime

from lab.brokers.contract import RunSpec
from lab.recipes.model import Recipe

MIN_RETENTION_S = 60  # SQS's own bounds for MessageRetentionPeriod
MAX_RETENTION_S = 14 * 24 * 3600
BATCH = 10  # SQS's most entries per batch call and messages per receive
FIFO = ".fifo"
DLQ = "-dlq"
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")
_NAME_MAX = 80 - len(DLQ) - len(FIFO)


def is_fifo(spec: RunSpec) -> bool:
    return spec.options.queue_type == "fifo"


def _fit(given: str) -> str:
    name = _NOT_IN_NAME.sub("_", given)
    if len(name) > _NAME_MAX:
        # Keep it unique: a digest of the whole name stands in for what is cut.
        name = name[: _NAME_MAX - 11] + "-" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return name


def _base(spec: RunSpec, subscriber: str) -> str:
    return _fit(f"{spec.queue}-{subscriber}" if subscriber else spec.queue)


def main_queue(spec: RunSpec, subscriber: str = "") -> str:
    """The run's queue; in pub-sub, one subscriber's (RunSpec.subscribers)."""
    return _base(spec, subscriber) + (FIFO if is_fifo(spec) else "")


def dead_letter_queue(spec: RunSpec, subscriber: str = "") -> str:
    # Not RunSpec.dead_letter_queue: SQS names cannot hold its dot.
    return _base(spec, subscriber) + DLQ + (FIFO if is_fifo(spec) else "")


def reply_queue(spec: RunSpec, requester: int) -> str:
    """Request-reply: one requester's reply queue, a standard queue even in a FIFO run
    (replies need no order: each carries the id of the request it answers)."""
    return _fit(spec.reply_to(requester))


def reply_queues(spec: RunSpec) -> list[str]:
    if not spec.recipe.request_reply:
        return []
    return [reply_queue(spec, i) for i in range(spec.recipe.producers.count)]


def retention_period(recipe: Recipe) -> int | None:
    """MessageRetentionPeriod for the recipe's max_age, within SQS's bounds; None without."""
    age = recipe.retention.max_age
    if not age:
        return None
    return min(max(math.ceil(age), MIN_RETENTION_S), MAX_RETENTION_S)


def main_attributes(spec: RunSpec, dlq_arn: str) -> dict[str, str]:
    attrs = {
        "VisibilityTimeout": str(math.ceil(spec.options.visibility_timeout)),
        # The server's own dead-lettering: a message received this many times without
        # being deleted goes to the DLQ on its next receive.
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.recipe.max_attempts)}
        ),
    }
    period = retention_period(spec.recipe)
    if period:
        attrs["MessageRetentionPeriod"] = str(period)
    if is_fifo(spec):
        attrs.update({"FifoQueue": "true", "ContentBasedDeduplication": "false"})
    return attrs


def reply_attributes(spec: RunSpec) -> dict[str, str]:
    # A requester that dies between reading a reply and deleting it gets it again after
    # this, and counts it as a duplicate.
    return {"VisibilityTimeout": str(math.ceil(spec.options.visibility_timeout))}


def dlq_attributes(spec: RunSpec) -> dict[str, str]:
    # Dead letters wait for someone to look at them: as long as SQS keeps anything.
    attrs = {"MessageRetentionPeriod": str(MAX_RETENTION_S)}
    if is_fifo(spec):
        attrs.update({"FifoQueue": "true", "ContentBasedDeduplication": "false"})
    return attrs


def group_id(spec: RunSpec, producer: int, seq: int) -> str:
    if spec.options.message_group == "key":
        return f"k{seq % spec.recipe.partitions}"
    return f"p{producer}"


def body(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


def payload(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return text.encode()  # not one of the lab's: the worker counts it as foreign


def server_ms(response: dict) -> int | None:
    """The server's clock from its reply's Date header, in ms (whole seconds), if any."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return int(parsedate_to_datetime(date).timestamp() * 1000) if date else None
    except (TypeError, ValueError):
        return None
