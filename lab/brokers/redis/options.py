"""The recipe's [redis] section."""

from dataclasses import dataclass

from lab.recipes.model import recipe_field


@dataclass(frozen=True)
class RedisOptions:
    # Pending entries idle this long are claimed (XAUTOCLAIM) from consumers that died.
    claim_idle: float = recipe_field(5.0, min=0.1, unit="s")
