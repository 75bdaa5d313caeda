"""Exporting a run's comparison: JSON (lossless), Markdown (summary table), and more to come.

paths = export(result, Path("results"), ("json", "md"))
"""

from collections.abc import Sequence
from pathlib import Path

from lab.errors import unknown_choice
from lab.export.markdown import to_markdown
from lab.results import RunResult

FORMATS = ("json", "md")


def export(result: RunResult, out_dir: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write the run in each format to out_dir/<run-id>.<ext>; return the paths."""
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
    return paths
