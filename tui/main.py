"""`lab tui [--replay results/RUN.json]`: the dashboard, wired like `lab run`.

Whatever ends the app (q, ctrl+c, SIGTERM, SIGHUP when the terminal goes, a crash), the
`finally` below stops what it started for the run.
"""

import json
from collections.abc import Callable
from pathlib import Path

from lab.errors import LabError
from lab.results import RunResult
from lab.runtimes import Runtime
from tui.app import make_app
from tui.config import TuiConfig


def load_replay(path: str) -> RunResult:
    """A recorded run, or one LabError saying what is wrong with the file."""
    file = Path(path)
    if not file.exists():
        raise LabError(f"no recorded run at {path}: give a results JSON (lab run writes them)")
    try:
        return RunResult.load(file)
    except KeyError as exc:
        raise LabError(f"{path} is not a Broker Lab results file (no {exc})") from None
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise LabError(f"{path} is not a Broker Lab results file ({exc})") from None


def run_tui(
    runtime_factory: Callable[[], Runtime], replay: str | None, out: str, keep_brokers: bool
) -> int:
    """The dashboard until the user quits; a replay needs no runtime, so none is made."""
    config = TuiConfig.load()
    result = load_replay(replay) if replay else None
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
