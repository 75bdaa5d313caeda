"""`lab status` and `lab up` as a table for people."""

from collections.abc import Sequence

from lab.app.format import mebibytes
from lab.runtimes import BrokerStatus


def render_status(rows: Sequence[BrokerStatus]) -> str:
    header = ("BROKER", "STATE", "ENDPOINT", "PID", "CPU", "RSS", "VERSION", "DETAIL")
    table = [header] + [
        (
            r.broker,
            str(r.state),
            r.endpoint or "-",
            str(r.pid or "-"),
            f"{r.cpu_percent:.1f}%" if r.cpu_percent is not None else "-",
            f"{mebibytes(r.rss_bytes)} MiB" if r.rss_bytes is not None else "-",
            r.version or "-",
            r.detail,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )
