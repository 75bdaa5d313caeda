"""A run as CSV: the time series, the per-second counts and the summary, one row per point,
second or broker, in files a spreadsheet opens and `read_csv` turns back into the JSON's values.

    <run-id>-series.csv       broker, t, phase, state, target_rate, produce_rate, lag, ...
    <run-id>-per-second.csv   broker, second, sent, acked, processed
    <run-id>-summary.csv      broker, produced, acked, ..., e2e_latency_ms.p99, ...

Values keep their JSON types through text: integers without a point, floats as Python's
shortest exact repr, true/false, an empty cell for null, nested lists (the latency
percentiles) as JSON in one cell, and a string that would read as one of those in quotes.
"""

import csv
import json
import re
from pathlib import Path

from lab.errors import LabError
from lab.results import RunResult

_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?(\d+\.\d*|\d*\.\d+|\d+)([eE][-+]?\d+)?|-?inf|nan")


def write_csv(result: RunResult, out_dir: Path) -> list[Path]:
    """Write the three files into out_dir; return their paths."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return [
            _write(out_dir / f"{result.run_id}-series.csv", *_series(result)),
            _write(out_dir / f"{result.run_id}-per-second.csv", *_per_second(result)),
            _write(out_dir / f"{result.run_id}-summary.csv", *_summary(result)),
        ]
    except OSError as exc:
        raise LabError(f"cannot write CSV to {out_dir}: {exc.strerror}") from None


def read_csv(path: Path) -> list[dict]:
    """Rows of a file written above, with the JSON's types back."""
    with path.open(newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _series(result: RunResult) -> tuple[list[str], list[dict]]:
    columns: dict[str, None] = {"broker": None}
    rows = []
    for name, b in result.brokers.items():
        for point in b.series:
            columns.update(dict.fromkeys(point))
            rows.append({"broker": name, **point})
    return list(columns), rows


def _per_second(result: RunResult) -> tuple[list[str], list[dict]]:
    counters: dict[str, None] = {}
    for b in result.brokers.values():
        counters.update(dict.fromkeys(b.per_second))
    rows = []
    for name, b in result.brokers.items():
        seconds = max((len(v) for v in b.per_second.values()), default=0)
        for s in range(seconds):
            row = {"broker": name, "second": s}
            # A counter shorter than the others has empty cells for the later seconds.
            row.update({c: v[s] for c, v in b.per_second.items() if s < len(v)})
            rows.append(row)
    return ["broker", "second", *counters], rows


def _summary(result: RunResult) -> tuple[list[str], list[dict]]:
    columns: dict[str, None] = {"broker": None}
    rows = []
    for name, b in result.brokers.items():
        flat = {"broker": name, **_flatten(b.summary)}
        columns.update(dict.fromkeys(flat))
        rows.append(flat)
    return list(columns), rows


def _flatten(d: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def unflatten(row: dict) -> dict:
    """`a.b` columns back into nested dicts (the summary's latencies)."""
    out: dict = {}
    for key, value in row.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _write(path: Path, columns: list[str], rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: _text(v) for k, v in row.items()})
    return path


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    text = str(value)
    # A string that would read back as something else is written as JSON text.
    return json.dumps(text) if _parse(text) != text or text.startswith('"') else text


def _parse(cell: str | None) -> object:
    if cell is None or cell == "":
        return None
    if cell in ("true", "false"):
        return cell == "true"
    if _INT.fullmatch(cell):
        return int(cell)
    if _FLOAT.fullmatch(cell):
        return float(cell)
    if cell[0] in '["{':
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
            return cell
    return cell


def read_run(out_dir: Path, run_id: str) -> dict[str, dict]:
    """The three files back as {broker: {"series", "per_second", "summary"}}: what the run's
    JSON holds under brokers.<name> for those keys."""
    brokers: dict[str, dict] = {}

    def of(name: str) -> dict:
        return brokers.setdefault(name, {"series": [], "per_second": {}, "summary": {}})

    for row in read_csv(out_dir / f"{run_id}-series.csv"):
        of(row.pop("broker"))["series"].append(row)
    for row in read_csv(out_dir / f"{run_id}-per-second.csv"):
        counts = of(row.pop("broker"))["per_second"]
        row.pop("second")
        for counter, value in row.items():
            if value is not None:
                counts.setdefault(counter, []).append(value)
    for row in read_csv(out_dir / f"{run_id}-summary.csv"):
        broker = row.pop("broker")
        of(broker)["summary"] = unflatten(row)
    return brokers
