"""Fixtures of the docker runtime's tests: a Docker Engine API double to talk to, and a
lab state dir of their own."""

import shutil

import pytest

from tests.helpers import isolated_settings
from tests.runtimes.docker.api_double import DockerDouble, socket_dir


@pytest.fixture
def engine(monkeypatch):
    """The Docker Engine API double, where the docker SDK looks for an engine."""
    with socket_dir() as path, DockerDouble(path / "docker.sock") as double:
        monkeypatch.setenv("DOCKER_HOST", double.url)
        yield double


@pytest.fixture
def settings():
    """A state dir of its own; nothing listens on its ports, so readiness fails fast."""
    s = isolated_settings(port_base=31000)
    yield s
    shutil.rmtree(s.state_dir, ignore_errors=True)
