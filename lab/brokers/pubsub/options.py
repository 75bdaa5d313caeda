"""The recipe's [pubsub] section."""

from dataclasses import dataclass

from lab.recipes.model import recipe_field

NATIVE_PROJECT = "broker-lab"  # the project id of the lab's own emulator
# Pub/Sub's own bounds for a subscription's ack deadline.
MIN_ACK_DEADLINE = 10
MAX_ACK_DEADLINE = 600
PULLS = ("streaming", "synchronous")


@dataclass(frozen=True)
class PubsubOptions:
    # synchronous: Pull calls; streaming: one StreamingPull per consumer (consumer.py
    # says why the first is the default).
    pull: str = recipe_field("synchronous", choices=PULLS)
    # Ordering keys: each producer publishes under one key per recipe partition
    # ("p<producer>-<n>", n = sequence mod partitions) to a subscription with
    # enable_message_ordering, so the server delivers each key's messages in order.
    ordering: bool = recipe_field(False)
    # The subscription's ack deadline, and how far the subscriber extends its leases:
    # how soon the messages of a consumer that died go to another one.
    ack_deadline: float = recipe_field(
        float(MIN_ACK_DEADLINE), min=MIN_ACK_DEADLINE, max=MAX_ACK_DEADLINE, unit="s"
    )
