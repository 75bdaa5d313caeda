"""The docker runtime's failures, each one clear line: no engine, an image that cannot be
pulled, a port or a name taken, a container that dies while starting, Ctrl-C. And what
`lab doctor` says about Docker. Against the Docker Engine API double."""

import signal
import subprocess
import sys
import time

import pytest

from lab.errors import LabError
from lab.runtimes import BrokerState, get_runtime
from lab.runtimes.docker import DockerRuntime
from tests.helpers import lab_env, run_lab
from tests.runtimes.docker.api_double import IMAGES

# --- clear errors -----------------------------------------------------------------------


def test_no_engine_is_one_clear_error(settings, monkeypatch, tmp_path):
    nowhere = f"unix://{tmp_path}/no-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", nowhere)
    with pytest.raises(LabError) as caught:
        DockerRuntime(settings).up(["redis"])
    message = str(caught.value)
    assert message == (
        f"no Docker engine answers at {nowhere} (nothing listens there): start Docker, "
        "point DOCKER_HOST at a running engine, or use --runtime native"
    )
    done = run_lab(settings, "--runtime", "docker", "status")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"lab: error: {message}"]


def test_auto_picks_docker_only_when_an_engine_answers(settings, engine, monkeypatch, tmp_path):
    assert get_runtime("auto", settings).name == "docker"
    (settings.broker_dir("redis")).mkdir(parents=True)
    (settings.broker_dir("redis") / "pids.json").write_text("{}")
    assert get_runtime("auto", settings).name == "native"  # its native brokers run
    (settings.broker_dir("redis") / "pids.json").unlink()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    assert get_runtime("auto", settings).name == "native"


def test_an_image_that_cannot_be_pulled(settings, engine):
    engine.behaviour.pull_http_error["redis:7.4"] = (
        404,
        "pull access denied for redis, repository does not exist or may require 'docker login'",
    )
    with pytest.raises(LabError) as caught:
        DockerRuntime(settings).up(["redis"])
    assert str(caught.value) == (
        "could not pull redis:7.4 (pull access denied for redis, repository does not exist "
        "or may require 'docker login'): check that the engine can reach the image registry, "
        "or run `docker pull redis:7.4`"
    )
    assert not engine.calls_to("POST", "/containers/create")


def test_a_pull_that_fails_midway(settings, engine):
    engine.behaviour.pull_stream_error["postgres:17"] = "unexpected EOF"
    with pytest.raises(LabError, match=r"could not pull postgres:17 \(unexpected EOF\)"):
        DockerRuntime(settings).up(["postgres"])
    assert not engine.containers


def test_a_port_held_by_another_process(settings, engine):
    name = f"broker-lab-{settings.port_base}-redis"
    engine.behaviour.start_error[name] = (
        500,
        "driver failed programming external connectivity on endpoint x: Bind for "
        f"127.0.0.1:{settings.port('redis')} failed: port is already allocated",
    )
    with pytest.raises(LabError) as caught:
        DockerRuntime(settings).up(["redis"])
    message = str(caught.value)
    assert f"redis cannot publish its port(s) {settings.port('redis')} on 127.0.0.1" in message
    assert "LAB_PORT_BASE" in message
    assert not engine.containers  # the container that could not start is gone


def test_a_container_name_taken_by_a_stranger(settings, engine):
    engine.add_image("redis:7.4")
    engine.add_container(f"broker-lab-{settings.port_base}-redis", {})
    with pytest.raises(LabError, match="exists that this lab did not start: remove it"):
        DockerRuntime(settings).up(["redis"])


def test_a_container_that_exits_while_starting(settings, engine):
    runtime = DockerRuntime(settings)
    name = runtime.container_name("postgres")
    engine.behaviour.exit_on_start[name] = 1
    secret = runtime.endpoint("postgres").password
    engine.logs[name] = f"FATAL: password {secret} rejected: data directory has wrong ownership\n"
    with pytest.raises(LabError) as caught:
        runtime.up(["postgres"])
    message = str(caught.value)
    assert message.startswith("postgres's container exited while starting (code 1)")
    assert "FATAL: password *** rejected" in message and secret not in message
    [status] = runtime.status(["postgres"], sample_seconds=0)
    assert status.state is BrokerState.KILLED and "exit code 1" in status.detail


def test_doctor_names_the_engine_and_the_images(settings, engine):
    engine.add_image(IMAGES["redis"])
    done = run_lab(settings, "doctor", DOCKER_HOST=engine.url)
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith("ok")}
    assert f"Docker Engine 27.3.1 (API 1.45) at {engine.url}" in lines["docker"]
    out = done.stdout
    assert f"{IMAGES['redis']} present" in out
    for broker in ("kafka", "rabbitmq", "postgres"):
        assert f"{IMAGES[broker]} not present: `lab up` pulls it" in out


def test_doctor_without_an_engine(settings, tmp_path):
    done = run_lab(settings, "doctor", DOCKER_HOST=f"unix://{tmp_path}/none.sock")
    [line] = [line for line in done.stdout.splitlines() if " docker " in line]
    assert f"no engine answers at unix://{tmp_path}/none.sock" in line
    assert "natively" in line


def test_ctrl_c_during_up_removes_what_it_created(settings, engine):
    """`lab up` waits for a broker that never answers; Ctrl-C leaves no container behind."""
    lab = subprocess.Popen(
        [sys.executable, "-m", "lab", "--runtime", "docker", "up", "redis"],
        env=lab_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not engine.calls_to("POST", r"/containers/\w+/start"):
            assert time.monotonic() < deadline, "the lab never started the container"
            assert lab.poll() is None, lab.communicate()
            time.sleep(0.05)
        lab.send_signal(signal.SIGINT)
        _, err = lab.communicate(timeout=30)
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
    assert lab.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert engine.containers == {}
    assert engine.calls_to("DELETE", r"/containers/\w+")
