"""What `lab run` shows: a live table of Snapshots (rich), and the summary at the end."""

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from lab.app.format import STATE_STYLE, mebibytes, millis, number
from lab.metrics import BrokerSnapshot, Latency, Snapshot
from lab.results import RunResult, alarming, columns, summary_rows


def _row(b: BrokerSnapshot) -> list[Text | str]:
    led = b.ledger
    lost = Text(str(led.lost), style="bold red" if led.lost else "")
    return [
        b.broker,
        b.phase,
        Text(b.state, style=STATE_STYLE.get(b.state, "")),
        number(b.target_rate),
        number(b.produce_rate),
        number(b.consume_rate),
        number(b.lag),
        f"{millis(b.publish.p50)}/{millis(b.publish.p99)}",
        f"{millis(b.e2e.p50)}/{millis(b.e2e.p99)}",
        number(led.acked),
        number(led.delivered),
        number(led.duplicates),
        number(led.in_flight),
        lost,
        Text(str(b.errors), style="red" if b.errors else ""),
        number(b.cpu_percent),
        mebibytes(b.rss_bytes),
    ]


HEADERS = (
    "broker",
    "phase",
    "state",
    "target/s",
    "sent/s",
    "recv/s",
    "lag",
    "pub ms p50/99",
    "e2e ms p50/99",
    "acked",
    "delivered",
    "dup",
    "in flight",
    "lost",
    "err",
    "cpu%",
    "MiB",
)


def _round_trip(b: BrokerSnapshot) -> list[Text | str]:
    """Request-reply: the round trip and the requests that timed out."""
    if b.requests is None:
        return ["-", "-"]
    r, rt = b.requests, b.requests.round_trip
    timed_out = Text(number(r.timed_out), style="bold red" if r.timed_out else "")
    return [f"{millis(rt.p50)}/{millis(rt.p99)}" if rt.count else "-", timed_out]


def live_view(snap: Snapshot) -> Group:
    table = Table(box=None, pad_edge=False, header_style="bold")
    requests = any(b.requests is not None for b in snap.brokers)
    headers = HEADERS + (("rtt ms p50/99", "timed out") if requests else ())
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i < 3 else "right", no_wrap=True)
    for b in snap.brokers:
        table.add_row(*_row(b), *(_round_trip(b) if requests else ()))
    title = Text.assemble(
        (f"{snap.recipe}", "bold"),
        f"  run {snap.run_id}  {snap.mode}  {snap.phase}  ",
        (f"{snap.t:5.1f}s", "bold"),
        f" of {snap.duration:g}s",
    )
    bar = ProgressBar(total=snap.duration, completed=min(snap.t, snap.duration), width=40)
    return Group(title, bar, table)


def _p99(lat: Latency) -> str:
    return f"{millis(lat.p99)}ms" if lat.count else "-"


def plain_line(snap: Snapshot) -> str:
    parts = [f"[{snap.t:6.1f}s {snap.phase}]"]
    for b in snap.brokers:
        parts.append(
            f"{b.broker}: {b.phase} {b.state} sent {b.produce_rate:,.0f}/s recv "
            f"{b.consume_rate:,.0f}/s lag {number(b.lag)} e2e p99 {millis(b.e2e.p99)}ms "
            f"acked {b.ledger.acked} delivered {b.ledger.delivered}"
            + (
                f" rtt p99 {_p99(b.requests.round_trip)} replied {b.requests.replied} "
                f"timed out {b.requests.timed_out}"
                if b.requests
                else ""
            )
        )
    return "  |  ".join(parts)


def summary_table(result: RunResult) -> Table:
    table = Table(title=f"run {result.run_id} ({result.mode})", header_style="bold")
    table.add_column("")
    shown = columns(result)
    for name, _ in shown:
        table.add_column(name, justify="right")
    for label, fmt in summary_rows(result):
        cells = [
            Text(fmt(summary), style="bold red" if alarming(label, summary) else "")
            for _, summary in shown
        ]
        table.add_row(label, *cells)
    return table


def print_summary(console: Console, result: RunResult, path: object) -> None:
    console.print(summary_table(result))
    for b in result.brokers.values():
        if b.emulates:
            console.print(
                f"{b.broker}: an emulator ({b.version or '?'}) of {b.emulates}: "
                "its behaviour is the service's, its speed is not"
            )
    for problem in result.problems:
        console.print(Text(f"problem: {problem}", style="bold red"))
    console.print(f"results: {path}")
