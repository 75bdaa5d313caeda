"""What `lab run` shows: a live table of Snapshots (rich), and the summary at the end."""

from collections.abc import Callable

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from lab.metrics import BrokerSnapshot, Snapshot
from lab.results import RunResult


def _n(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if abs(value) >= 10_000:
        return f"{value / 1000:,.1f}k"
    return f"{value:,.{digits}f}"


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


STATE_STYLE = {"healthy": "green", "killed": "bold red", "paused": "yellow", "unreachable": "red"}


def _row(b: BrokerSnapshot) -> list[Text | str]:
    led = b.ledger
    lost = Text(str(led.lost), style="bold red" if led.lost else "")
    return [
        b.broker,
        b.phase,
        Text(b.state, style=STATE_STYLE.get(b.state, "")),
        _n(b.target_rate),
        _n(b.produce_rate),
        _n(b.consume_rate),
        _n(b.lag),
        f"{_ms(b.publish.p50)}/{_ms(b.publish.p99)}",
        f"{_ms(b.e2e.p50)}/{_ms(b.e2e.p99)}",
        _n(led.acked),
        _n(led.delivered),
        _n(led.duplicates),
        _n(led.in_flight),
        lost,
        Text(str(b.errors), style="red" if b.errors else ""),
        _n(b.cpu_percent),
        _mib(b.rss_bytes),
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


def live_view(snap: Snapshot) -> Group:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if i < 3 else "right", no_wrap=True)
    for b in snap.brokers:
        table.add_row(*_row(b))
    title = Text.assemble(
        (f"{snap.recipe}", "bold"),
        f"  run {snap.run_id}  {snap.mode}  {snap.phase}  ",
        (f"{snap.t:5.1f}s", "bold"),
        f" of {snap.duration:g}s",
    )
    bar = ProgressBar(total=snap.duration, completed=min(snap.t, snap.duration), width=40)
    return Group(title, bar, table)


def plain_line(snap: Snapshot) -> str:
    parts = [f"[{snap.t:6.1f}s {snap.phase}]"]
    for b in snap.brokers:
        parts.append(
            f"{b.broker}: {b.phase} {b.state} sent {b.produce_rate:,.0f}/s recv "
            f"{b.consume_rate:,.0f}/s lag {_n(b.lag)} e2e p99 {_ms(b.e2e.p99)}ms "
            f"acked {b.ledger.acked} delivered {b.ledger.delivered}"
        )
    return "  |  ".join(parts)


def summary_table(result: RunResult) -> Table:
    table = Table(title=f"run {result.run_id} ({result.mode})", header_style="bold")
    rows: list[tuple[str, Callable[[dict], str]]] = [
        ("produced", lambda s: f"{s['produced']:,}"),
        ("acked", lambda s: f"{s['acked']:,}"),
        ("delivered", lambda s: f"{s['delivered']:,}"),
        ("duplicates", lambda s: f"{s['duplicates']:,}"),
        ("dead-lettered", lambda s: f"{s['dead_lettered']:,}"),
        ("retention-dropped", lambda s: f"{s['retention_dropped']:,}"),
        ("in flight", lambda s: f"{s['in_flight']:,}"),
        ("lost", lambda s: f"{s['lost']:,}"),
        ("adds up", lambda s: "yes" if s["adds_up"] else "NO"),
        ("send rate (msgs/s)", lambda s: f"{s['produce_rate']:,.0f} of {s['target_rate']:,.0f}"),
        ("receive rate (msgs/s)", lambda s: f"{s['consume_rate']:,.0f}"),
        ("publish p50/p99/max ms", lambda s: _lat(s["publish_latency_ms"])),
        ("end-to-end p50/p99/max ms", lambda s: _lat(s["e2e_latency_ms"])),
        ("max lag", lambda s: f"{s['max_lag']:,}"),
        ("errors", lambda s: f"{s['errors']:,}"),
    ]
    table.add_column("")
    for name in result.brokers:
        table.add_column(name, justify="right")
    for label, fmt in rows:
        table.add_row(label, *[fmt(b.summary) for b in result.brokers.values()])
    return table


def _lat(lat: dict) -> str:
    return f"{_ms(lat['p50'])}/{_ms(lat['p99'])}/{_ms(lat['max'])}"


def print_summary(console: Console, result: RunResult, path: object) -> None:
    console.print(summary_table(result))
    for problem in result.problems:
        console.print(Text(f"problem: {problem}", style="bold red"))
    console.print(f"results: {path}")
