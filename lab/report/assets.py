"""The chart library the report embeds: uPlot, from the npm registry, installed by
`make setup` into the lab's cache (like Kafka's jars), never into the repo.

uPlot because it is small (51 KB minified, 22 KB gzipped, once per report) and draws
interactive time series on canvas: a cursor with values, zoom, charts in sync. pygal's
static SVG costs about 24 KB per chart of four brokers and fetches its tooltips script from
the network unless told not to; plotly's bundle is 4.8 MB per file.
"""

import json
from pathlib import Path

from lab.errors import LabError
from lab.settings import Settings

UPLOT_VERSION = "1.6.32"  # scripts/setup.sh installs this version; keep them together


def npm_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or Settings.from_env().cache_dir) / "npm"


def chart_library(cache_dir: Path | None = None) -> tuple[str, str]:
    """(uPlot's JavaScript, its CSS), read from the cache; a LabError if setup has not
    installed this version there."""
    package = npm_dir(cache_dir) / "node_modules" / "uplot"
    missing = LabError(
        f"the chart library uPlot {UPLOT_VERSION} is not installed in {package.parent}: "
        "run make setup"
    )
    try:
        version = json.loads((package / "package.json").read_text()).get("version")
        js = (package / "dist" / "uPlot.iife.min.js").read_text()
        css = (package / "dist" / "uPlot.min.css").read_text()
    except (OSError, ValueError):
        raise missing from None
    if version != UPLOT_VERSION:
        raise missing
    return js, css
