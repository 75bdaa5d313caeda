"""Bad input: one line that says what is wrong and what to do, exit 2, no traceback."""

import socket

import pytest

from tests.helpers import isolated_lab, port_block, run_lab


@pytest.fixture
def settings():
    with isolated_lab(port_base=port_block("cli")) as s:
        yield s


def one_line_error(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lab: error: ")
    return lines[0]


def test_unknown_broker(settings):
    line = one_line_error(run_lab(settings, "up", "kafak"))
    assert "unknown broker 'kafak'" in line
    assert "did you mean 'kafka'" in line


def test_port_already_taken(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", settings.port("redis")))
        sock.listen()
        line = one_line_error(run_lab(settings, "up", "redis"))
    assert f"port {settings.port('redis')} (redis) is already in use" in line
    assert "LAB_PORT_BASE" in line


def test_broker_binary_not_installed(settings, tmp_path):
    line = one_line_error(run_lab(settings, "up", "redis", PATH=str(tmp_path)))
    assert "redis-server is not installed" in line
    assert "make setup" in line


def test_kafka_not_assembled(settings, tmp_path):
    line = one_line_error(run_lab(settings, "up", "kafka", LAB_CACHE_DIR=str(tmp_path)))
    assert "Apache Kafka" in line and "is not assembled" in line
    assert "make setup" in line


def test_state_dir_not_writable(settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line_error(run_lab(settings, "up", "redis", LAB_STATE_DIR=str(blocker / "state")))
    assert "is not writable" in line and "LAB_STATE_DIR" in line


def test_docker_runtime_without_an_engine(settings, tmp_path):
    nowhere = f"unix://{tmp_path}/docker.sock"
    line = one_line_error(run_lab(settings, "--runtime", "docker", "status", DOCKER_HOST=nowhere))
    assert "no Docker engine answers" in line and "--runtime native" in line


def test_bad_port_base(settings):
    line = one_line_error(run_lab(settings, "status", LAB_PORT_BASE="lots"))
    assert "LAB_PORT_BASE must be a number" in line


def test_state_dir_check_holds_when_brokers_start_at_once(settings):
    """A restart fault restarts every broker of a run at the same moment, each `up` in its
    own thread checking the state dir: none of them may see another's check."""
    from concurrent.futures import ThreadPoolExecutor

    from lab.runtimes.native import NativeRuntime

    runtime = NativeRuntime(settings)

    def check(_):
        for _ in range(200):
            runtime._ensure_state_dir()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(check, range(8)))  # re-raises the first LabError, if any
