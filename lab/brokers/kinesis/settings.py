"""What a run's settings say: how each recipe setting maps to Kinesis, and what the local
server does not do that the service does."""

import math

from lab.brokers.contract import RunSpec
from lab.brokers.kinesis.checkpoints import CheckpointStore
from lab.brokers.kinesis.client import TLS_SCHEME

MIN_HOURS = 24  # Kinesis refuses less
MAX_HOURS = 8760
DLQ_HOURS = 168  # a week: the most kinesalite takes (the service takes up to MAX_HOURS)

NOT_EMULATED = (
    "kinesalite does not do: shard limits (1 MB/s or 1,000 records/s in, 2 MB/s and 5 "
    "GetRecords calls/s out per shard; never throttled), enhanced fan-out "
    "(SubscribeToShard), on-demand streams, encryption, CloudWatch metrics; it deletes "
    "expired records only as a GetRecords call passes them"
)


def run_settings(spec: RunSpec, stream: str, dlq: str) -> dict[str, str]:
    recipe, options = spec.recipe, spec.options
    checkpoints = CheckpointStore(stream, spec.broker_dir() / "checkpoints").path
    local = spec.admin.scheme != TLS_SCHEME
    out = {
        "server": (
            "kinesalite (the Kinesis API on LevelDB), plain http"
            if local
            else f"the Kinesis API at {spec.admin.host}"
        ),
        "stream": f"{stream}: {recipe.partitions} shards (the recipe's partitions), provisioned",
        "durability": _durability(recipe.durability, local),
        "producer": (
            f"PutRecords, up to {options.put_batch} records a call, the shards in turn"
            " (ExplicitHashKey); acked once the call returned the record's sequence number"
        ),
        "consumers": (
            "own shards: the engine gives each live consumer every n-th shard and moves them"
            " when consumers start, crash, come or go (the Kinesis Client Library's leases);"
            f" GetRecords at most every {options.read_interval:g} s a shard,"
            f" up to {options.read_limit} records a call, handed out {recipe.consumers.prefetch}"
            " at a time (prefetch)"
        ),
        "checkpoints": (
            "after processing: the last record of a shard settled together with all before"
            f" it, kept in {checkpoints} (a new owner reads from there on:"
            " at least once)"
        ),
        "retries": (
            "Kinesis has no negative ack: a rejected record is handed out again by its"
            " consumer, attempts counted by the consumer, and the checkpoint stays below it;"
            f" after {recipe.max_attempts} attempts (max_attempts) a dead letter"
        ),
        "lag": (
            "records after each shard's checkpoint, counted by the probe, which reads every"
            " shard once (Kinesis tells lag only as MillisBehindLatest)"
        ),
        **_retention(spec),
        "dead_letters": (
            f"stream {dlq} (1 shard, retention {DLQ_HOURS} h): the payload behind an envelope with"
            " reason, attempts, first and last failure, put before the checkpoint passes the"
            " original; redrive: put back into the main stream, then the dead-letter"
            " stream's checkpoint passes them (Kinesis deletes no record)"
        ),
    }
    out.update(_patterns(spec, stream))
    if local:
        out["not_emulated"] = NOT_EMULATED
    return out


def _patterns(spec: RunSpec, stream: str) -> dict[str, str]:
    recipe, out = spec.recipe, {}
    subscribers = [sub for sub in spec.subscribers if sub]
    if subscribers:
        directory = spec.broker_dir() / "checkpoints"
        files = ", ".join(CheckpointStore(stream, directory, sub).path.name for sub in subscribers)
        out["subscribers"] = (
            f"{len(subscribers)} independent readers of every shard, as Kinesis Client Library"
            " applications of their own: each subscriber's consumers share the shards among"
            f" themselves and checkpoint in its own file ({files} in {directory}); each"
            " subscriber's lag is counted from its own checkpoints"
        )
    if recipe.request_reply:
        out["replies"] = (
            f"stream {stream}.reply-N (1 shard) for each of the {recipe.producers.count}"
            " requesters, made at provisioning and deleted at teardown; GetRecords on it every"
            f" {spec.options.read_interval:g} s from TRIM_HORIZON (no server-side wait: a reply"
            " waits for the requester's next read)"
        )
    return out


def _durability(profile: str, local: bool) -> str:
    if not local:
        return f"the service's own: three availability zones (`{profile}` changes nothing)"
    return (
        "kinesalite's LevelDB under its data dir (--path): each PutRecords is written to"
        " LevelDB's log before the reply, not fsynced, so a killed server keeps it and a"
        f" power cut may not; `{profile}` changes nothing, the storage is chosen when the"
        " server starts"
    )


def retention_hours(max_age: float) -> int:
    """The recipe's max_age as RetentionPeriodHours: Kinesis keeps records 24 h at least."""
    hours = math.ceil(max_age / 3600) if max_age else MIN_HOURS
    return min(max(hours, MIN_HOURS), MAX_HOURS)


def _retention(spec: RunSpec) -> dict[str, str]:
    r = spec.recipe.retention
    hours = retention_hours(r.max_age)
    out = {"retention": f"RetentionPeriodHours = {hours} (a new stream's 24 h, Kinesis's least)"}
    if r.max_age:
        out["retention"] = (
            f"RetentionPeriodHours = {hours} for max_age {r.max_age:g} s"
            f" (Kinesis keeps records {MIN_HOURS} h at the least); the trim horizon is the"
            " retention floor"
        )
    if r.max_messages:
        out["retention_max_messages"] = (
            f"max_messages {r.max_messages}: not applied, Kinesis keeps records by age only"
        )
    if r.max_bytes:
        out["retention_max_bytes"] = (
            f"max_bytes {r.max_bytes}: not applied, Kinesis keeps records by age only"
        )
    return out
