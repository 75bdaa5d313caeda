"""Where a run's consumers keep their checkpoints: one small file per run, under a lock.

Kinesis keeps records, not consumers' progress: the Kinesis Client Library keeps its
leases and checkpoints in a DynamoDB table. The lab keeps them in a file of its state dir
(<state dir>/kinesis/checkpoints/<stream>.json), which every process of a run reaches:
the consumers write it, the engine's probe reads it to count the lag, `lab dlq` reads and
moves the dead-letter stream's checkpoint later on. A stream's records alone could not
say what was processed; a record per checkpoint in a third stream could, but a new owner
of a shard would have to read all of it to learn one number.

    {"checkpoints": {"<stream>": {"<shard id>": "<sequence number>"}},
     "leases": {"<shard id>": {"owner": "<consumer>", "until": <unix time>}}}

A checkpoint is the sequence number of the last record of the shard that was settled
(acked or dead-lettered) together with every record before it: a new owner reads from
the one after it. Checkpoints only move forward, so a consumer that has just lost a shard
cannot move it back. Writers take an flock; readers need none, since every write replaces
the file whole.

Leases are for consumers the engine did not assign (the adapter contract tests, tools):
such a consumer takes the shards nobody holds, as a KCL worker takes leases, and gives
them back when it closes. Consumers of a run are assigned by the engine and take none.

Pub-sub: each subscriber is an application of its own, as two KCL applications reading
one stream each keep a lease table of their own: its consumers own the shards among
themselves and checkpoint in its own file, <stream>.<subscriber>.json, so no subscriber's
progress (or lock) touches another's. The dead-letter stream's checkpoint stays in the
run's file.
"""

import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.brokers.kinesis.client import order_key
from lab.errors import LabError

LEASE_SECONDS = 10.0


class CheckpointStore:
    def __init__(self, run_stream: str, directory: Path, subscriber: str = "") -> None:
        """`directory`: the run's RunSpec.broker_dir() / "checkpoints"; `subscriber`: the
        pub-sub subscription whose checkpoints these are ("": the run's own)."""
        name = f"{run_stream.strip('/')}.{subscriber}" if subscriber else run_stream.strip("/")
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.dir = directory
        self.path = self.dir / f"{safe}.json"
        self._lock_path = self.dir / f"{safe}.lock"

    def read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise LabError(f"kinesis checkpoints in {self.path} are unreadable: {exc}") from None
        return data if isinstance(data, dict) else {}

    def checkpoints(self, stream: str) -> dict[str, str]:
        """Shard id -> sequence number of the last settled record."""
        return dict(self.read().get("checkpoints", {}).get(stream, {}))

    def advance(self, stream: str, points: dict[str, str]) -> None:
        """Move these shards' checkpoints forward (never back)."""
        if not points:
            return

        def change(data: dict) -> None:
            mine = data.setdefault("checkpoints", {}).setdefault(stream, {})
            for shard, sequence in points.items():
                old = mine.get(shard)
                if old is None or order_key(sequence) > order_key(old):
                    mine[shard] = sequence

        self._update(change)

    def claim(self, owner: str, shards: list[str], now: float | None = None) -> list[str]:
        """Renew this owner's leases and take every shard nobody holds; returns its shards."""
        now = time.time() if now is None else now
        held: list[str] = []

        def change(data: dict) -> None:
            leases = data.setdefault("leases", {})
            for shard in shards:
                lease = leases.get(shard)
                if lease is None or lease["owner"] == owner or lease["until"] < now:
                    leases[shard] = {"owner": owner, "until": now + LEASE_SECONDS}
                    held.append(shard)

        self._update(change)
        return held

    def release(self, owner: str) -> None:
        def change(data: dict) -> None:
            leases = data.get("leases", {})
            for shard in [s for s, lease in leases.items() if lease["owner"] == owner]:
                del leases[shard]

        if self.path.exists():
            self._update(change)

    def create(self) -> None:
        """An empty file, at provisioning: a state dir the lab cannot write fails there."""
        self._update(lambda data: None)

    def remove(self) -> None:
        for path in (self.path, self._lock_path):
            path.unlink(missing_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fh = open(self._lock_path, "a")  # noqa: SIM115 - held for the block below
        except OSError as exc:
            raise LabError(
                f"cannot keep kinesis checkpoints in {self.dir} ({exc.strerror}): "
                "set LAB_STATE_DIR to a directory you can write"
            ) from None
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _update(self, change: Callable[[dict], None]) -> None:
        with self._locked():
            data = self.read()
            change(data)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)
