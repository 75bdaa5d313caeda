"""The recipe's [postgres] section, and the account the lab's PostgreSQL has."""

from dataclasses import dataclass

from lab.recipes.model import recipe_field

CONSUME = ("skip-locked", "polling")
SUPERUSER = "lab"  # with a generated password (native and container)
DATABASE = "postgres"


@dataclass(frozen=True)
class PostgresOptions:
    # skip-locked: claim batches with FOR UPDATE SKIP LOCKED, wake on LISTEN/NOTIFY.
    # polling: the anti-pattern, SELECT ... WHERE status = 'new' every poll_interval.
    consume: str = recipe_field("skip-locked", choices=CONSUME)
    poll_interval: float = recipe_field(0.1, min=0.001, max=60, unit="s")
