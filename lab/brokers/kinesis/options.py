"""The recipe's [kinesis] section."""

from dataclasses import dataclass

from lab.recipes.model import recipe_field


@dataclass(frozen=True)
class KinesisOptions:
    # Least time between two GetRecords calls of one consumer on one shard. Kinesis allows
    # five a second per shard, shared by every reader, hence 200 ms (the Kinesis Client
    # Library waits 1 s by default).
    read_interval: float = recipe_field(0.2, min=0.01, max=10, unit="s")
    # Records one GetRecords call may return (Kinesis: at most 10,000; the Kinesis Client
    # Library asks for 10,000). The consumer hands them to the worker as it asks.
    read_limit: int = recipe_field(1000, min=1, max=10_000)
    # Records a producer puts in one PutRecords call (Kinesis takes at most 500).
    put_batch: int = recipe_field(500, min=1, max=500)
