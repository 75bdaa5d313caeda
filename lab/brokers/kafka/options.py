"""The recipe's [kafka] section."""

from dataclasses import dataclass

from lab.recipes.model import recipe_field

CLIENTS = ("confluent", "kafka-python")


@dataclass(frozen=True)
class KafkaOptions:
    client: str = recipe_field("confluent", choices=CLIENTS)
