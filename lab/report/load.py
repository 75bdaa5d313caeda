"""Reading results files for the report and the exports: a missing file, a file that is
not JSON or not a run's results is one LabError naming the file, never a traceback."""

import json
from pathlib import Path

from lab.errors import LabError
from lab.results import RunResult


def load_run(path: Path) -> RunResult:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise LabError(f"{path}: no such results file (lab run writes them to results/)") from None
    except IsADirectoryError:
        raise LabError(
            f"{path}: is a directory; give a results file, e.g. {path}/RUN.json"
        ) from None
    except OSError as exc:
        raise LabError(f"{path}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LabError(f"{path}: is not a text file; give a results JSON file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabError(
            f"{path}: is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    try:
        if not isinstance(data, dict) or not isinstance(data.get("brokers"), dict):
            raise TypeError("no brokers")
        return RunResult.from_dict(data)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise LabError(f"{path}: is not a Broker Lab results file ({exc})") from None
