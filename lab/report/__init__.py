"""`lab report`: runs' results as one self-contained HTML file with charts.

write_report([Path("results/a.json"), Path("results/b.json")], Path("report.html"))
"""

from pathlib import Path

from lab.errors import LabError
from lab.report import assets, page
from lab.results import RunResult


def render_report(results: list[RunResult], cache_dir: Path | None = None) -> str:
    """The page for these runs; a LabError when setup has not installed the chart library."""
    js, css = assets.chart_library(cache_dir)
    return page.render(results, js, css)


def write_report(paths: list[Path], out: Path, cache_dir: Path | None = None) -> Path:
    """Read each results file and write one HTML report comparing them to `out`."""
    if not paths:
        raise LabError("give at least one results file, e.g. lab report results/RUN.json")
    text = render_report([RunResult.load(p) for p in paths], cache_dir)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    except OSError as exc:
        raise LabError(f"cannot write the report {out}: {exc.strerror}") from None
    return out


__all__ = ["render_report", "write_report"]
