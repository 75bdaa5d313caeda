"""The docker runtime against the Docker Engine API double.

The double records the SDK's calls, so the tests prove what the runtime asks the engine
for: images and tags, labels, loopback-only ports, health checks, generated passwords,
kill/pause/restart/stats/logs, and cleanup by label. Its containers run nothing: the
runtime is given the port block of the session's native brokers, so its protocol-level
readiness waits on real brokers.
"""

import json
import stat
import threading
import time

import pytest

from lab import brokers as registry
from lab.errors import LabError
from lab.runtimes import BrokerState
from lab.runtimes.containers import BROKER_LABEL
from lab.runtimes.docker import DockerRuntime
from lab.runtimes.docker_containers import CONFIG_LABEL, STATE_LABEL
from tests.helpers import run_lab
from tests.runtimes.docker.api_double import IMAGES

PASSWORD_VARIABLES = {
    "rabbitmq": "RABBITMQ_DEFAULT_PASS",
    "redis": "REDIS_PASSWORD",
    "postgres": "POSTGRES_PASSWORD",
}


@pytest.fixture(scope="module")
def native(session_lab):
    """The session's native brokers, all four answering."""
    for broker in registry.names():
        session_lab.endpoint(broker)
    return session_lab.runtime


@pytest.fixture
def docker_rt(native, engine):
    """A docker runtime whose containers 'run' where the native brokers answer."""
    runtime = DockerRuntime(native.settings)
    yield runtime
    runtime.down([])  # the double's containers only: the native brokers keep running


def created(engine, broker):
    [call] = [c for c in engine.calls_to("POST", "/containers/create") if broker_of(c) == broker]
    return call.body


def broker_of(call):
    return (call.body.get("Labels") or {}).get(BROKER_LABEL)


def env_of(body):
    return dict(item.split("=", 1) for item in body["Env"])


def lowered(query):
    """The SDK writes booleans as True/False; the engine reads them case-blind."""
    return {k: v.lower() for k, v in query.items()}


def secret_of(settings, broker):
    return (settings.broker_dir(broker) / "secret").read_text().strip()


# --- up: what the engine is asked for, and a real protocol-level wait -----------------


def test_up_pulls_official_images_and_creates_labelled_loopback_containers(docker_rt, engine):
    settings = docker_rt.settings
    # Every broker, not only the default set that `up` with no names brings.
    rows = docker_rt.up(list(registry.names()))
    assert [(r.broker, r.state) for r in rows] == [
        (b, BrokerState.HEALTHY) for b in registry.names()
    ]

    pulls = {
        (c.query["fromImage"], c.query["tag"]) for c in engine.calls_to("POST", "/images/create")
    }
    assert pulls == {tuple(ref.rsplit(":", 1)) for ref in IMAGES.values()}

    for broker in registry.names():
        body = created(engine, broker)
        assert body["Image"] == IMAGES[broker]
        labels = body["Labels"]
        assert labels[BROKER_LABEL] == broker
        assert labels[STATE_LABEL] == str(settings.state_dir)
        assert len(labels[CONFIG_LABEL]) == 16

        bindings = body["HostConfig"]["PortBindings"]
        published = {int(b["HostPort"]) for spec in bindings.values() for b in spec}
        assert {b["HostIp"] for spec in bindings.values() for b in spec} == {"127.0.0.1"}
        assert settings.port(broker) in published
        assert set(body["ExposedPorts"]) == set(bindings)

        check = body["Healthcheck"]
        assert check["Test"][0] in ("CMD", "CMD-SHELL") and len(check["Test"]) > 1
        assert check["Interval"] > 0 and check["Timeout"] > 0 and check["Retries"] > 0
        assert check["StartPeriod"] > 0
        assert body["StopTimeout"] > 0

    started = {c.path.split("/")[2] for c in engine.calls_to("POST", r"/containers/\w+/start")}
    assert started == {c["Id"] for c in engine.containers.values()}


def test_generated_passwords_go_to_the_container_env_only(docker_rt, engine):
    settings = docker_rt.settings
    docker_rt.up([])
    for broker, variable in PASSWORD_VARIABLES.items():
        body = created(engine, broker)
        secret = secret_of(settings, broker)
        path = settings.broker_dir(broker) / "secret"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert env_of(body)[variable] == secret
        rest = {k: v for k, v in body.items() if k != "Env"}
        assert secret not in json.dumps(rest), f"{broker}'s password outside its env"
    status = json.dumps([r.to_dict() for r in docker_rt.status([], sample_seconds=0)])
    assert not any(secret_of(settings, b) in status for b in PASSWORD_VARIABLES)


def test_a_new_state_dir_gets_new_private_passwords(settings, engine):
    runtime = DockerRuntime(settings, start_timeout=0.3)
    with pytest.raises(LabError, match="did not answer within"):
        runtime.up(["postgres"])
    secret = settings.broker_dir("postgres") / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) >= 20
    assert env_of(created(engine, "postgres"))["POSTGRES_PASSWORD"] == secret.read_text().strip()


def test_kafka_advertises_host_reachable_and_proxied_listeners(docker_rt, engine):
    settings = docker_rt.settings
    docker_rt.up(["kafka"])
    body = created(engine, "kafka")
    env = env_of(body)
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    assert advertised["PLAINTEXT"] == f"127.0.0.1:{settings.port('kafka')}"
    # Every connection a workload makes goes through the chaos proxy's port.
    assert advertised["PROXIED"] == f"127.0.0.1:{settings.proxy_port('kafka')}"
    bindings = body["HostConfig"]["PortBindings"]
    for name in ("PLAINTEXT", "PROXIED"):
        container_port = listeners[name].rsplit(":", 1)[1]
        # Published 1:1, so the advertised address is right inside the container too.
        [binding] = bindings[f"{container_port}/tcp"]
        assert binding == {"HostIp": "127.0.0.1", "HostPort": container_port}
    assert f"{settings.port('kafka-proxied')}/tcp" in bindings
    assert f"{settings.port('kafka-controller')}/tcp" not in bindings  # internal only


def test_up_waits_for_the_protocol_not_the_container(docker_rt, native, engine):
    """The container 'runs' at once; `up` returns only when Redis answers PING."""
    native.pause("redis")
    try:
        done = threading.Event()
        result = {}

        def start():
            try:
                result["rows"] = docker_rt.up(["redis"])
            finally:
                done.set()

        thread = threading.Thread(target=start)
        thread.start()
        time.sleep(2.0)
        running = engine.by_name(docker_rt.container_name("redis"))
        assert running and running["State"]["Status"] == "running"
        assert not done.is_set(), "up returned before the broker answered"
    finally:
        native.resume("redis")
    assert done.wait(20)
    thread.join()
    assert result["rows"][0].state is BrokerState.HEALTHY


def test_up_again_leaves_a_healthy_container_alone(docker_rt, engine):
    docker_rt.up(["redis"])
    messages = []
    docker_rt.up(["redis"], progress=lambda broker, msg: messages.append(msg))
    assert messages == ["already running"]
    assert len(engine.calls_to("POST", "/containers/create")) == 1


def test_changed_settings_replace_the_container(docker_rt, engine):
    stale = engine.add_container(
        docker_rt.container_name("redis"),
        {
            BROKER_LABEL: "redis",
            STATE_LABEL: str(docker_rt.settings.state_dir),
            CONFIG_LABEL: "0000000000000000",
        },
    )
    [row] = docker_rt.up(["redis"])
    assert row.state is BrokerState.HEALTHY
    assert engine.calls_to("DELETE", f"/containers/{stale}")
    assert stale not in engine.containers
    assert len(engine.calls_to("POST", "/containers/create")) == 1


# --- faults and observation -------------------------------------------------------------


def test_kill_then_up_starts_the_same_container(docker_rt, engine):
    docker_rt.up(["postgres"])
    [container] = engine.containers.values()
    docker_rt.kill("postgres")
    [kill] = engine.calls_to("POST", r"/containers/\w+/kill")
    assert kill.query["signal"] == "SIGKILL"
    [status] = docker_rt.status(["postgres"], sample_seconds=0)
    assert status.state is BrokerState.KILLED and "SIGKILL" in status.detail
    assert docker_rt.stats("postgres") is None
    with pytest.raises(LabError, match="postgres is not running: start it with `lab up postgres`"):
        docker_rt.kill("postgres")

    [status] = docker_rt.up(["postgres"])
    assert status.state is BrokerState.HEALTHY
    assert len(engine.calls_to("POST", "/containers/create")) == 1
    assert len(engine.calls_to("POST", f"/containers/{container['Id']}/start")) == 2


def test_pause_resume_and_restart(docker_rt, engine):
    docker_rt.up(["rabbitmq"])
    docker_rt.pause("rabbitmq")
    assert engine.calls_to("POST", r"/containers/\w+/pause")
    [status] = docker_rt.status(["rabbitmq"], sample_seconds=0)
    assert status.state is BrokerState.PAUSED
    docker_rt.resume("rabbitmq")
    assert engine.calls_to("POST", r"/containers/\w+/unpause")

    status = docker_rt.restart("rabbitmq")
    assert status.state is BrokerState.HEALTHY
    [restart] = engine.calls_to("POST", r"/containers/\w+/restart")
    assert restart.query["t"] == "30"  # graceful first, with the broker's own patience


def test_stats_come_from_the_stats_api(docker_rt, engine):
    docker_rt.up(["redis"])
    first = docker_rt.stats("redis")
    second = docker_rt.stats("redis")
    calls = engine.calls_to("GET", r"/containers/\w+/stats")
    # One sample per call, without the engine's second sample a second later.
    assert calls and all(lowered(c.query) == {"stream": "false", "one-shot": "true"} for c in calls)
    assert first.cpu_percent == 0.0  # no earlier sample of this container yet
    # 0.5 s of CPU in 4 s of host time on 2 cores: 25% of one core
    assert second.cpu_percent == 25.0
    assert second.rss_bytes == 250 * 2**20  # usage less inactive page cache
    [status] = docker_rt.status(["redis"], sample_seconds=0.05)
    assert status.cpu_percent == 25.0 and status.rss_bytes == 250 * 2**20
    assert status.pid == 4242


def test_logs_are_tailed_and_never_show_the_password(docker_rt, engine):
    docker_rt.up(["rabbitmq"])
    secret = secret_of(docker_rt.settings, "rabbitmq")
    name = docker_rt.container_name("rabbitmq")
    engine.logs[name] = "".join(f"line {i}\n" for i in range(50)) + f"user lab pass {secret}\n"
    text = docker_rt.logs("rabbitmq", lines=3)
    assert text.splitlines() == ["line 48", "line 49", "user lab pass ***"]
    assert engine.calls_to("GET", r"/containers/\w+/logs")[-1].query["tail"] == "3"


# --- cleanup by label -------------------------------------------------------------------


def test_down_removes_exactly_this_labs_containers(docker_rt, engine):
    docker_rt.up(["redis", "postgres"])
    state = str(docker_rt.settings.state_dir)
    leftover = engine.add_container("half-started", {BROKER_LABEL: "kafka", STATE_LABEL: state})
    retired = engine.add_container("old-broker", {BROKER_LABEL: "nats", STATE_LABEL: state})
    other_lab = engine.add_container("other", {BROKER_LABEL: "redis", STATE_LABEL: "/elsewhere"})
    stranger = engine.add_container("stranger", {})

    docker_rt.down(["redis"])
    assert {c["Name"] for c in engine.containers.values()} >= {"/half-started", "/old-broker"}
    assert engine.by_name(docker_rt.container_name("redis")) is None

    docker_rt.down([])
    assert set(engine.containers) == {other_lab, stranger}
    assert leftover not in engine.containers and retired not in engine.containers
    [listing, *_] = engine.calls_to("GET", "/containers/json")
    assert json.loads(listing.query["filters"]) == {"label": [f"{STATE_LABEL}={state}"]}
    stops = engine.calls_to("POST", r"/containers/\w+/stop")
    assert stops, "running containers are stopped gracefully before removal"
    removals = engine.calls_to("DELETE", r"/containers/\w+")
    assert all(lowered(c.query)["v"] in ("1", "true") for c in removals)


def test_duplicate_containers_of_a_broker_are_cleaned_up(docker_rt, engine):
    docker_rt.up(["redis"])
    state = str(docker_rt.settings.state_dir)
    twin = engine.add_container("redis-twin", {BROKER_LABEL: "redis", STATE_LABEL: state})
    [status] = docker_rt.up(["redis"])
    assert status.state is BrokerState.HEALTHY
    assert twin not in engine.containers


def test_status_through_the_cli(native, engine):
    done = run_lab(
        native.settings, "--runtime", "docker", "status", "--json", DOCKER_HOST=engine.url
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["broker"] for r in rows] == list(registry.names())
    assert {r["runtime"] for r in rows} == {"docker"} and {r["state"] for r in rows} == {"stopped"}
    for broker in PASSWORD_VARIABLES:
        assert secret_of(native.settings, broker) not in done.stdout
