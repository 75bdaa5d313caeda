"""The report as one HTML file: tables written here, charts drawn in the browser by uPlot
(embedded, with the data), so the file works offline and from anywhere it is copied to."""

import html
import json
from datetime import UTC, datetime
from importlib import resources

from lab import __version__
from lab.report.data import TIME_CHARTS, run_data
from lab.results import RunResult, alarming, columns, summary_rows

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1900px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
  border-bottom: 1px solid #ddd; } h3 { font-size: 15px; margin: 16px 0 4px; }
.muted { color: #666; } .alarm { color: #b00020; font-weight: bold; }
table { border-collapse: collapse; margin: 4px 0 12px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.row { display: flex; flex-wrap: wrap; gap: 16px; }
.chart.empty { padding: 20px; color: #888; border: 1px dashed #ccc; }
.runs { display: flex; flex-wrap: wrap; gap: 32px; } .runs > div { min-width: 320px; }
code { font-size: 12px; } .u-title { font-size: 14px !important; }
.row { margin-bottom: 18px; }
"""


def render(results: list[RunResult], js: str, css: str) -> str:
    """The whole page; `js` and `css` are uPlot's, embedded as they are."""
    labels = _labels(results)
    runs = [run_data(r, label) for r, label in zip(results, labels, strict=True)]
    brokers = list(dict.fromkeys(b["name"] for run in runs for b in run["brokers"]))
    data = {"runs": runs, "brokers": brokers}
    any_prediction = any(b["prediction"] for run in runs for b in run["brokers"])
    body = [
        "<h1>Broker Lab report</h1>",
        f'<p class="muted">{len(results)} run(s) · broker-lab {html.escape(__version__)} · '
        f"written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}</p>",
        _overview(results, labels),
        "<h2>Over time</h2>",
        '<p class="muted">Seconds on each run\'s clock. Red lines: faults and commands; '
        "grey dashed: phases (producing, warm-up over, draining). Dotted: the target rate."
        + (
            " Dashed on the lag chart: the backlog the fluid model predicts from the recipe "
            "(its rate curve against consumers x 1 / processing time)."
            if any_prediction
            else ""
        )
        + " Drag to zoom, double-click to reset.</p>",
    ]
    for kind, (_, title, unit) in TIME_CHARTS.items():
        shown = "lag, measured and predicted" if kind == "lag" and any_prediction else title
        body.append(_chart_row(kind, "time", shown, unit))
    body += [
        "<h2>Latency percentiles</h2>",
        '<p class="muted">After warm-up, from each broker\'s HdrHistogram: how many '
        "messages took longer than what, out to the slowest one.</p>",
        _chart_row("e2e", "percentiles", "end-to-end latency", "ms"),
        _chart_row("publish", "percentiles", "publish latency", "ms"),
        "<h2>Ledger</h2>",
        _per_run(results, labels, _ledger),
        "<h2>Events</h2>",
        _per_run(results, labels, _events),
        "<h2>Settings</h2>",
        _per_run(results, labels, _settings),
        "<h2>Environment</h2>",
        _per_run(results, labels, _environment),
    ]
    script = resources.files("lab.report").joinpath("report.js").read_text()
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            # Nothing may leave the file: no fetch, no image, no font from anywhere else.
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">",
            f"<title>Broker Lab report: {_e(', '.join(r.run_id for r in results))}</title>",
            f"<style>{css}</style><style>{STYLE}</style></head><body>",
            *body,
            f'<script type="application/json" id="report-data">{_json(data)}</script>',
            f"<script>{_inline(js)}</script>",
            f"<script>{_inline(script)}</script>",
            "</body></html>",
        ]
    )


def _labels(results: list[RunResult]) -> list[str]:
    """Short names for chart titles: the recipe for one run, a letter and the recipe for
    several (the overview table maps each to its run id)."""
    if len(results) == 1:
        return [results[0].recipe.get("name", results[0].run_id)]
    return [f"{chr(65 + i % 26)} · {r.recipe.get('name', r.run_id)}" for i, r in enumerate(results)]


def _json(data: object) -> str:
    # Inside <script>, "</" would end the element: JSON allows "<\/" for it.
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _inline(js: str) -> str:
    if "</script" in js.lower():
        raise ValueError("a script to inline contains </script>")  # a bug, not bad input
    return js


def _chart_row(kind: str, family: str, title: str, unit: str) -> str:
    return (
        f'<div class="row" data-chart="{kind}" data-family="{family}" '
        f'data-title="{html.escape(title)}" data-unit="{html.escape(unit)}"></div>'
    )


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(head: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already (escaped by the caller)."""
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(cells) + "</tr>" for cells in rows]
    return "".join(out) + "</table>"


def _per_run(results: list[RunResult], labels: list[str], section: object) -> str:
    parts = [
        f"<div><h3>{_e(label)}</h3>{section(r)}</div>"  # type: ignore[operator]
        for r, label in zip(results, labels, strict=True)
    ]
    return '<div class="runs">' + "".join(parts) + "</div>"


def _overview(results: list[RunResult], labels: list[str]) -> str:
    rows = []
    for r, label in zip(results, labels, strict=True):
        recipe = r.recipe
        rate = recipe.get("rate", {})
        mean = "mean " if rate.get("profile") == "curve" else ""
        what = (
            f"{rate.get('profile', '?')}, {mean}{rate.get('rate', 0):,.4g} msgs/s" if rate else "?"
        )
        rows.append(
            [
                f"<td><b>{_e(label.split(' · ')[0] if len(results) > 1 else '')}</b></td>",
                f"<td>{_e(r.run_id)}</td>",
                f"<td>{_e(recipe.get('name', '?'))}</td>",
                f"<td>{_e(what)}</td>",
                f"<td>{_e(', '.join(r.brokers))}</td>",
                f"<td>{_e(r.mode)}</td>",
                f"<td>{_e(_when(r.started_at))}</td>",
                f'<td class="num">{r.duration_s:,.1f} s</td>',
                f"<td>{_e(r.environment.get('runtime', '?'))}</td>",
                "<td>"
                + (
                    '<span class="alarm">' + _e("; ".join(r.problems)) + "</span>"
                    if r.problems
                    else "none"
                )
                + "</td>",
            ]
        )
    head = ["", "run", "recipe", "rate", "brokers", "mode", "started", "took", "runtime"]
    head.append("problems")
    return _table(head, rows)


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return str(iso)


def _ledger(r: RunResult) -> str:
    shown = columns(r)
    rows = []
    for label, fmt in summary_rows(r):
        cells = [f"<td>{_e(label)}</td>"]
        for _, summary in shown:
            try:
                text, alarm = fmt(summary), alarming(label, summary)
            except (KeyError, TypeError, ValueError):
                text, alarm = "-", False  # a figure this (older) file did not record
            cls = "num alarm" if alarm else "num"
            cells.append(f'<td class="{cls}">{_e(text)}</td>')
        rows.append(cells)
    return _table([""] + [_e(name) for name, _ in shown], rows)


def _events(r: RunResult) -> str:
    shown = [e for e in r.events if e.kind in ("fault", "command", "error", "phase")]
    rows = [
        [
            f'<td class="num">{e.t:,.1f} s</td>',
            f"<td>{_e(e.kind)}</td>",
            f"<td>{_e(e.broker or 'all')}</td>",
            f'<td class="{"alarm" if e.kind == "error" else ""}">{_e(e.message)}</td>',
        ]
        for e in shown
    ]
    return _table(["t", "kind", "broker", "what"], rows) if rows else "<p>none</p>"


def _settings(r: RunResult) -> str:
    out = []
    for b in r.brokers.values():
        rows = [[f"<td>{_e(k)}</td>", f"<td>{_e(v)}</td>"] for k, v in b.settings.items()]
        head = f"<b>{_e(b.broker)}</b> {_e(b.version or '?')} with {_e(b.client)}"
        out.append(f"<p>{head}</p>" + _table(["setting", "value"], rows))
    recipe = json.dumps(r.recipe, indent=1)
    out.append(
        f"<details><summary>recipe as run</summary><pre><code>{_e(recipe)}</code></pre></details>"
    )
    return "".join(out)


def _environment(r: RunResult) -> str:
    rows = []
    for key, value in r.environment.items():
        text = str(value)
        if isinstance(value, dict):
            text = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif key == "memory_bytes" and isinstance(value, int):
            text = f"{value / 2**30:.1f} GiB"
        rows.append([f"<td>{_e(key)}</td>", f"<td>{_e(text)}</td>"])
    return _table(["", ""], rows)
