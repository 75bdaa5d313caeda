"""`lab doctor`: what is installed, what is missing, and the exact command that fixes it."""

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from lab.runtimes.docker_engine import docker_checks
from lab.runtimes.native import NativeRuntime
from lab.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    fix: str = ""


def run_checks(settings: Settings) -> list[Check]:
    runtime = NativeRuntime(settings)
    checks = [
        Check(
            "python",
            sys.version_info >= (3, 11),
            sys.version.split()[0],
            "install Python 3.11 or newer",
        )
    ]
    for name, broker in runtime.brokers.items():
        problem = broker.missing()
        if problem:
            what, _, fix = problem.partition(": ")
            checks.append(Check(name, False, what, fix))
        else:
            checks.append(Check(name, True, f"{broker.version() or '?'}"))
    # Which Docker engine answers (or none) and which images `lab up` would pull.
    checks += docker_checks(settings)
    tmux = shutil.which("tmux")
    checks.append(Check("tmux", bool(tmux), tmux or "not installed", "apt-get install tmux"))
    state = settings.state_dir
    writable = _writable(state)
    checks.append(
        Check(
            "state dir",
            writable,
            str(state),
            "set LAB_STATE_DIR to a directory you can write",
        )
    )
    return checks


def _writable(path: Path) -> bool:
    """The directory, or the nearest parent that exists and would hold it, is writable."""
    while not path.exists():
        path = path.parent
    return os.access(path, os.W_OK | os.X_OK)


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        mark = "ok     " if c.ok else "MISSING"
        line = f"{mark}  {c.name:<{width}}  {c.found}"
        if not c.ok and c.fix:
            line += f"\n         {'':<{width}}  fix: {c.fix}"
        lines.append(line)
    return "\n".join(lines)
