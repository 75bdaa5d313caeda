import os
import shutil

import pytest

from lab.runtimes.native import NativeRuntime
from tests.helpers import isolated_lab, isolated_settings, leftovers


@pytest.fixture
def fresh_lab():
    """A native runtime with its own state dir and ports; everything is stopped after."""
    with isolated_lab(port_base=19000) as settings:
        yield NativeRuntime(settings)


class SessionLab:
    """Brokers shared by the engine and adapter tests, started on first use."""

    def __init__(self, runtime: NativeRuntime) -> None:
        self.runtime = runtime
        self._up: set[str] = set()

    def endpoint(self, broker: str):
        if broker not in self._up:
            [status] = self.runtime.up([broker])
            assert status.state == "healthy", status
            self._up.add(broker)
        return self.runtime.endpoint(broker)


@pytest.fixture(scope="session")
def session_lab():
    # Test labs use port blocks 19000, 21000, 23000 and this one (each block spans ~1700
    # ports, all below Linux's ephemeral range). LAB_TEST_PORT_BASE moves this one, so two
    # runs of the broker tests on one machine keep out of each other's way.
    settings = isolated_settings(port_base=int(os.environ.get("LAB_TEST_PORT_BASE", "25000")))
    runtime = NativeRuntime(settings)
    try:
        yield SessionLab(runtime)
    finally:
        runtime.down([])
        left = leftovers(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
        assert not left, f"processes left behind: {left}"
