"""`lab tui [--replay results/RUN.json]`: the dashboard, wired like `lab run`.

Whatever ends the app (q, ctrl+c, SIGTERM, SIGHUP when the terminal goes, a crash), the
`finally` below stops what it started for the run.
"""

from collections.abc import Callable
from pathlib import Path

from lab.results import RunResult
from lab.runtimes import Runtime
from tui.app import make_app
from tui.config import TuiConfig


def run_tui(
    runtime_factory: Callable[[], Runtime], replay: str | None, out: str, keep_brokers: bool
) -> int:
    """The dashboard until the user quits; a replay needs no runtime, so none is made."""
    config = TuiConfig.load()
    result = RunResult.load(Path(replay)) if replay else None
    runtime = None if result else runtime_factory()
    app = make_app(
        runtime,
        replay=result,
        config=config,
        results_dir=Path(out),
        keep_brokers=keep_brokers,
        handle_signals=True,
    )
    try:
        app.run()
    finally:
        app.cleanup()
    return app.return_code or 0
