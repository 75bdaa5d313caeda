"""`lab dlq BROKER`: list a run's dead letters, redrive them, or purge the run's queues."""

from datetime import datetime

from rich.console import Console
from rich.table import Table

from lab.app import dlq as kept
from lab.runtimes import Progress, Runtime


def dlq(
    runtime: Runtime,
    broker: str,
    run_id: str | None,
    limit: int,
    redrive: bool,
    purge: bool,
    progress: Progress,
) -> int:
    adapter = kept.adapter_for_run(runtime, broker, run_id)  # fails fast if no run kept any
    adapter.close()
    with kept.broker_up(runtime, broker, progress):
        return _dlq(runtime, broker, adapter.spec.run_id, limit, redrive, purge)


def _dlq(runtime: Runtime, broker: str, run_id: str, limit: int, redrive: bool, purge: bool) -> int:
    adapter = kept.adapter_for_run(runtime, broker, run_id)
    run = adapter.spec.run_id
    console = Console()
    if redrive or purge:
        adapter.close()
        if redrive:
            moved = kept.redrive(runtime, broker, run)
            print(
                f"{broker}: {moved} dead letters of run {run} sent back to its queue "
                f"(lab dlq {broker} --run {run} --purge deletes it)"
            )
        else:
            kept.purge(runtime, broker, run)
            print(f"{broker}: run {run}'s queue and dead letters deleted")
        return 0
    try:
        letters = adapter.dead_letters(limit)
        count = adapter.probe(final=True).dead_letters
    finally:
        adapter.close()
    table = Table(title=f"{broker}: dead letters of run {run} ({count} in all)")
    table.add_column("id", overflow="fold")
    table.add_column("message", no_wrap=True)
    table.add_column("attempts", justify="right")
    table.add_column("first failure", no_wrap=True)
    table.add_column("last failure", no_wrap=True)
    table.add_column("reason")
    table.add_column("payload", max_width=16, no_wrap=True)
    for d in letters:
        table.add_row(
            d.id,
            f"p{d.producer} #{d.seq}" if d.seq is not None else "-",
            str(d.attempts),
            _time(d.first_failure),
            _time(d.last_failure),
            d.reason,
            d.payload_head,
        )
    console.print(table)
    print(f"redrive: lab dlq {broker} --run {run} --redrive")
    return 0


def _time(unix: float) -> str:
    return datetime.fromtimestamp(unix).strftime("%H:%M:%S.%f")[:-3]
