import pytest

from lab.runtimes.native import NativeRuntime
from tests.helpers import isolated_lab


@pytest.fixture
def fresh_lab():
    """A native runtime with its own state dir and ports; everything is stopped after."""
    with isolated_lab(port_base=27000) as settings:
        yield NativeRuntime(settings)
