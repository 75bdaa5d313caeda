"""The recipe's [rabbitmq] section, and the user the lab's RabbitMQ has."""

from dataclasses import dataclass

from lab.recipes.model import recipe_field

QUEUE_TYPES = ("classic", "quorum")
USER = "lab"  # replaces `guest`, with a generated password (native and container)


@dataclass(frozen=True)
class RabbitMQOptions:
    queue_type: str = recipe_field("classic", choices=QUEUE_TYPES)
    # Publisher confirms kept in flight before a producer waits.
    confirm_window: int = recipe_field(1000, min=1, max=100_000)
