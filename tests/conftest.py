import shutil

import pytest

from lab.runtimes.native import NativeRuntime
from tests.helpers import isolated_lab, isolated_settings, leftovers, port_block


@pytest.fixture
def fresh_lab():
    """A native runtime with its own state dir and ports; everything is stopped after."""
    with isolated_lab(port_base=port_block("fresh")) as settings:
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
    settings = isolated_settings(port_base=port_block("session"))
    runtime = NativeRuntime(settings)
    try:
        yield SessionLab(runtime)
    finally:
        runtime.down([])
        left = leftovers(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
        assert not left, f"processes left behind: {left}"
