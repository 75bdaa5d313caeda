"""The recipe's [sqs] section."""

from dataclasses import dataclass

from lab.recipes.model import recipe_field

QUEUE_TYPES = ("standard", "fifo")
# FIFO queues order messages within a message group: one group per producer, or one per
# key (a message's key is its sequence number modulo the recipe's partitions, as a keyed
# Kafka topic would spread it).
MESSAGE_GROUPS = ("producer", "key")


@dataclass(frozen=True)
class SqsOptions:
    queue_type: str = recipe_field("standard", choices=QUEUE_TYPES)
    message_group: str = recipe_field("producer", choices=MESSAGE_GROUPS)
    # A received message stays invisible this long; not deleted by then (its consumer
    # crashed), it is delivered again. SQS's default is 30 s: the lab's runs are short.
    visibility_timeout: float = recipe_field(10.0, min=1, max=43200, unit="s")
    # A batch of fewer than 10 waits this long for more before SendMessageBatch.
    linger: float = recipe_field(0.005, min=0, max=1, unit="s")
