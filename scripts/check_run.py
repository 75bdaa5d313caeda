"""Exit 1 unless every broker of the given results files kept an exact ledger: every acked
message delivered once, none lost, duplicated or still in flight, and the books add up.

    .venv/bin/python scripts/check_run.py results/*.json

CI runs it on the headless quickstart it starts first (.ci/run).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the lab, when not installed

from lab.errors import LabError
from lab.results import RunResult


def problems(result: RunResult) -> list[str]:
    found = list(result.problems)
    for name, broker in result.brokers.items():
        s = broker.summary
        if not s["adds_up"]:
            found.append(f"{name}: the ledger does not add up")
        if s["acked"] == 0:
            found.append(f"{name}: nothing was acked")
        for key in ("lost", "duplicates", "in_flight"):
            if s[key]:
                found.append(f"{name}: {s[key]} {key.replace('_', ' ')}")
        if s["delivered"] != s["acked"]:
            found.append(f"{name}: {s['delivered']} delivered of {s['acked']} acked")
    return found


def main(paths: list[str]) -> int:
    if not paths:
        print("check_run: give results files", file=sys.stderr)
        return 2
    bad = 0
    for path in paths:
        try:
            result = RunResult.load(Path(path))
        except LabError as exc:
            print(f"check_run: {exc}", file=sys.stderr)
            return 2
        found = problems(result)
        brokers = ", ".join(result.brokers)
        print(f"{path}: {'NOT exact: ' + '; '.join(found) if found else 'exact'} ({brokers})")
        bad += bool(found)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
