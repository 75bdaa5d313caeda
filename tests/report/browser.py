"""Shared by the report tests (no tests here): Debian's Chromium, headless, renders a report
and says what it logged, what it asked the network for, and what each chart drew."""

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get install -y chromium (make setup does it)"
# As the machine's notes say: without the background-networking flags Chromium calls home,
# and those connections are refused here.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Pixels of each chart's series colours on its canvas: the lines were drawn, not only
# the axes and grid (which are grey). A colour counts within a small distance, for
# anti-aliasing.
COUNT_PIXELS = """
() => window.__report.charts.map((c) => {
  const canvas = document.getElementById(c.id).querySelector("canvas");
  const img = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const targets = c.colours.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
  let pixels = 0;
  for (let i = 0; i < img.length; i += 4) {
    if (img[i + 3] < 200) continue;
    if (targets.some(([r, g, b]) =>
        Math.abs(img[i] - r) + Math.abs(img[i + 1] - g) + Math.abs(img[i + 2] - b) < 40)) {
      pixels++;
    }
  }
  return { id: c.id, points: c.points, pixels, yMax: c.yMax, xRange: c.xRange };
})
"""


@dataclass
class Rendered:
    console_errors: list[str]
    page_errors: list[str]
    requests: list[str]
    charts: list[dict]
    empty: list[str]  # charts that said "no data recorded"
    text: str
    labels: dict[str, list[dict]] = field(default_factory=dict)  # chart id -> marker labels


def chromium() -> Path:
    """The browser, or a failed test that says how to install it (never a skip)."""
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: {INSTALL}", pytrace=False)
    return CHROMIUM if CHROMIUM.exists() else Path(shutil.which("chromium") or "")


def render(html: Path, profile: Path, screenshot: Path | None = None) -> Rendered:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: make setup (pip install -e .[dev])")
    url = html.resolve().as_uri()
    console, errors, requests = [], [], []
    with sync_playwright() as p:
        # A persistent context is how Playwright takes a user-data dir: a new, empty one.
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(chromium()),
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and console.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            # uPlot draws on the next animation frame; two frames and every chart is there.
            page.evaluate(
                "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
            )
            charts = page.evaluate(COUNT_PIXELS)
            empty = page.evaluate(
                "Array.from(document.querySelectorAll('.chart.empty')).map((e) => e.id)"
            )
            text = page.inner_text("body")
            labels = page.evaluate("window.__report.labels")
            if screenshot:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            context.close()
    others = [u for u in requests if u != url]
    return Rendered(console, errors, others, charts, empty, text, labels)


def assert_drawn(r: Rendered, expected_charts: int) -> None:
    """No console error, no page error, nothing asked of the network, every chart drawn."""
    assert not r.console_errors, r.console_errors
    assert not r.page_errors, r.page_errors
    assert not r.requests, f"the report asked the network for {r.requests}"
    assert not r.empty, f"charts without data: {r.empty}"
    assert len(r.charts) == expected_charts, [c["id"] for c in r.charts]
    for c in r.charts:
        assert c["points"] > 0, c
        assert c["pixels"] > 100, f"chart {c['id']} drew no line ({c['pixels']} pixels)"
