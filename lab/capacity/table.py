"""`lab capacity` as a person reads it: the inputs, the figures, and the three options."""

from lab.capacity.model import BITS_PER_BYTE, Plan


def _n(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def _pct(value: float) -> str:
    return f"{value:.1%}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _size(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


def _after_peak(p: Plan, per_hour: list[float]) -> str:
    if p.workload.peak_share is None or len(per_hour) < 2:
        return ""
    return (
        f" in the first hour ({per_hour[0]:,.0f} requests), then "
        f"{_n(per_hour[1] / 3600)} req/s ({per_hour[1]:,.0f} an hour)"
    )


def render(p: Plan) -> str:
    w = p.workload
    start, end = w.hours
    peak = "evenly spread" if w.peak_share is None else f"{w.peak_share:.0%} in the first hour"
    per_hour = w.hourly()
    rows = [
        f"{w.users:,} users x {w.requests_per_user:g} requests = "
        f"{w.requests_per_day:,.0f} requests a day, {start}:00 to {end}:00 ({peak})",
        f"requests {_size(w.request_bytes)} in, {_size(w.response_bytes)} out; "
        f"one server handles {w.server_rps:g} req/s",
        "",
        f"  mean rate        {_n(p.mean_rps)} req/s over the working hours "
        f"({_n(w.requests_per_day / w.working_hours)} requests an hour)",
        f"  peak rate        {_n(p.peak_rps)} req/s" + _after_peak(p, per_hour),
        f"  in  mean / peak  {_n(p.mbit_in_mean)} / {_n(p.mbit_in_peak)} Mbit/s",
        f"  out mean / peak  {_n(p.mbit_out_mean)} / {_n(p.mbit_out_peak)} Mbit/s",
        f"  servers needed   {p.servers_needed} for the peak, used {_pct(p.utilization)} over 24 h",
        "",
    ]
    s = p.servers
    rows.append(
        f"servers: {s['count']} behind a proxy handle {_n(s['capacity_rps'])} req/s "
        f"({s['capacity_per_day']:,.0f} a day), used {_pct(s['utilization'])} over 24 h, "
        f"{_pct(s['peak_utilization'])} at the peak"
        + ("" if s["handles_peak"] else ": NOT enough for the peak")
    )
    if s["peak_wait_s"] is not None:
        rows.append(f"         mean wait at the peak {duration(s['peak_wait_s'])} (M/M/c)")
    q = p.queue
    head = f"queue:   {q['workers']} worker(s) at {_n(q['capacity_rps'])} req/s"
    if q["backlog_max"] is None:
        rows.append(f"{head}: more arrives each day than they can do; the backlog only grows")
    elif q["backlog_max"] > 0:
        rows.append(
            f"{head}: up to {q['backlog_max']:,.0f} waiting, the last of them for "
            f"{duration(q['max_wait_s'])}, gone {duration(q['drained_after_s'])} after the peak"
        )
    else:
        rows.append(f"{head}: keep up all day (fluid model: no backlog)")
    if q["steady_wait_s"] is not None:
        rows.append(
            f"         mean wait in the busiest steady hour {duration(q['steady_wait_s'])} (M/M/c)"
        )
    v = p.serverless
    if v["cost_per_day"] is None and v["servers_cost_per_day"] is None:
        rows.append(
            "serverless: give --cost-per-request and --cost-per-server-hour to compare costs"
        )
    else:
        parts = []
        if v["cost_per_day"] is not None:
            parts.append(
                f"{v['requests_per_day']:,.0f} requests cost {v['cost_per_day']:,.2f} a day"
            )
        if v["servers_cost_per_day"] is not None:
            parts.append(
                f"{p.servers_needed} server(s) all day cost {v['servers_cost_per_day']:,.2f}"
            )
        line = "serverless: " + "; ".join(parts)
        if v["cheaper"]:
            line += f": {v['cheaper']} is cheaper"
        if v["break_even_requests_per_day"] is not None:
            line += (
                f"; they cost the same at {v['break_even_requests_per_day']:,.0f} requests a day"
            )
        rows.append(line)
    rows += [
        "",
        f"Network figures count {BITS_PER_BYTE} bits per byte (8 + 2 for protocol overhead); "
        "1 MB = 10^6 bytes.",
    ]
    return "\n".join(rows)
