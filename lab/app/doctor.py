"""`lab doctor`: what is installed, what is missing, and the exact command that fixes it."""

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
from docker.errors import DockerException

from lab.runtimes import docker_engine as engine
from lab.runtimes.containers import services
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


def docker_checks(
    settings: Settings, connector: Callable[[], docker.DockerClient] = engine.connect
) -> list[Check]:
    """Which Docker engine answers (or none) and, for each image the docker runtime uses,
    whether it is present or would be pulled. None of them fails the doctor: without an
    engine the lab runs its brokers natively."""
    try:
        client = connector()
    except engine.NoEngine as exc:
        found = f"no engine answers at {exc.url} ({exc.reason}): `lab up` runs brokers natively"
        return [Check("docker", True, found)]
    try:
        version = engine.engine_version(client)
        checks = [Check("docker", True, f"{version} at {engine.engine_url()}")]
        for broker, svc in services(settings).items():
            try:
                present = engine.image_present(client, svc.ref)
            except (DockerException, requests.RequestException) as exc:
                checks.append(Check(f"image {broker}", False, f"{svc.ref}: {engine.reason(exc)}"))
                continue
            found = f"{svc.ref} present" if present else f"{svc.ref} not present: `lab up` pulls it"
            checks.append(Check(f"image {broker}", True, found))
        return checks
    finally:
        client.close()


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
