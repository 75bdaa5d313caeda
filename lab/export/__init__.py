"""Exporting a run's comparison: JSON (lossless), Markdown (summary table), CSV (the time
series, per-second counts and summary) and HTML (the report with charts).

paths = export(result, Path("results"), ("json", "md", "html"))
"""

from collections.abc import Sequence
from pathlib import Path

from lab.errors import unknown_choice
from lab.export.csv import write_csv
from lab.export.markdown import to_markdown
from lab.report import render_report
from lab.results import RunResult

FORMATS = ("json", "md", "csv", "html")
DEFAULT_FORMATS = ("json", "md")


def export(
    result: RunResult, out_dir: Path, formats: Sequence[str] = DEFAULT_FORMATS
) -> list[Path]:
    """Write the run in each format to out_dir/<run-id>.<ext> (CSV: <run-id>-series.csv and
    two more); return the paths."""
    paths = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise unknown_choice("export format", fmt, FORMATS)
        if fmt == "json":
            paths.append(result.write(out_dir))
        elif fmt == "md":
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{result.run_id}.md"
            path.write_text(to_markdown(result))
            paths.append(path)
        elif fmt == "csv":
            paths += write_csv(result, out_dir)
        elif fmt == "html":
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{result.run_id}.html"
            path.write_text(render_report([result]))
            paths.append(path)
    return paths
