"""Runtimes make brokers exist: `native` (this host's binaries), `docker`, `external`.

Every runtime offers the same operations (lab/runtimes/base.py), so the engine, the
faults and the UIs never ask which one they are talking to.
"""

import os
from collections.abc import Sequence

from lab import brokers as registry
from lab.errors import LabError, unknown_choice
from lab.runtimes.base import Progress, Runtime
from lab.runtimes.model import BrokerState, BrokerStatus, ResourceStats
from lab.settings import Settings

RUNTIMES = ("native", "docker", "external")
# What --runtime takes: `auto` picks one of RUNTIMES (see choose_runtime).
RUNTIME_CHOICES = ("auto", *RUNTIMES)


def choose_runtime(
    settings: Settings, broker_urls: Sequence[str] = (), external_config: str | None = None
) -> str:
    """`auto`: external when broker URLs are given; native while native brokers of this
    state dir run (so `lab down` stops what `lab up` started); else docker when an engine
    answers, native when none does."""
    if broker_urls or external_config:
        return "external"
    if any((settings.broker_dir(b) / "pids.json").exists() for b in registry.names()):
        return "native"
    from lab.runtimes.docker_engine import engine_answers

    return "docker" if engine_answers() else "native"


def get_runtime(
    name: str,
    settings: Settings | None = None,
    broker_urls: Sequence[str] = (),
    external_config: str | None = None,
) -> Runtime:
    """The runtime called `name` (or `auto`); URLs and a config file are the external
    runtime's brokers (LAB_EXTERNAL_CONFIG names the file when the caller does not)."""
    settings = settings or Settings.from_env()
    external_config = external_config or os.environ.get("LAB_EXTERNAL_CONFIG") or None
    if name == "auto":
        name = choose_runtime(settings, broker_urls, external_config)
    elif name not in RUNTIMES:
        raise unknown_choice("runtime", name, RUNTIME_CHOICES)
    if name != "external" and broker_urls:
        raise LabError(f"--broker-url is for the external runtime, not '{name}': drop --runtime")
    if name == "native":
        from lab.runtimes.native import NativeRuntime

        return NativeRuntime(settings)
    if name == "docker":
        from lab.runtimes.docker import DockerRuntime

        return DockerRuntime(settings)
    from lab.runtimes.external import from_options

    return from_options(settings, broker_urls, external_config)


__all__ = [
    "RUNTIMES",
    "RUNTIME_CHOICES",
    "BrokerState",
    "BrokerStatus",
    "Progress",
    "ResourceStats",
    "Runtime",
    "choose_runtime",
    "get_runtime",
]
