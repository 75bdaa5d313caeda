"""compose/*.yml: valid Compose files, up to date, and the same brokers the docker runtime
creates (compared with what the runtime actually sends to the engine double)."""

import contextlib
import importlib.util
import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from lab import brokers as registry
from lab.errors import LabError
from lab.runtimes.docker import DockerRuntime
from lab.settings import DEFAULT_PORT_BASE
from tests.helpers import REPO, isolated_settings
from tests.runtimes.docker.api_double import DockerDouble, socket_dir

COMPOSE = REPO / "compose"
FILES = ("brokers.yml", "kafka-cluster.yml", "rabbitmq-cluster.yml")
SCHEMA = json.loads((REPO / "tests/data/compose-spec/compose-spec.json").read_text())
REQUIRED_VARIABLE = re.compile(r"^\$\{(\w+):\?[^}]+\}$")


def load(name: str) -> dict:
    return yaml.safe_load((COMPOSE / name).read_text())


def generator():
    spec = importlib.util.spec_from_file_location("compose_generate", COMPOSE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unescape(text: str) -> str:
    return text.replace("$$", "$")


def seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)s", text)
    assert match, f"duration {text!r} is not whole seconds"
    return int(match[1])


@pytest.mark.parametrize("name", FILES)
def test_valid_against_the_compose_specification(name):
    jsonschema.validate(load(name), SCHEMA, cls=jsonschema.Draft202012Validator)


def test_the_schema_rejects_what_compose_would():
    """The schema is not vacuous: a misspelt key and a bad port fail it."""
    doc = load("brokers.yml")
    doc["services"]["redis"]["helthcheck"] = {}
    with pytest.raises(jsonschema.ValidationError, match="helthcheck"):
        jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    doc = load("brokers.yml")
    doc["services"]["redis"]["ports"][0]["host_ip"] = ["127.0.0.1"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_the_files_are_generated_from_the_service_definitions():
    gen = generator()
    for name, (what, doc) in gen.documents().items():
        assert (COMPOSE / name).read_text() == gen.text_of(what, doc), (
            f"compose/{name} is out of date: run .venv/bin/python compose/generate.py"
        )
    assert set(gen.documents()) == set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_loopback_ports_and_no_literal_passwords(name):
    doc = load(name)
    for service in doc["services"].values():
        for port in service["ports"]:
            assert port["host_ip"] == "127.0.0.1", port
        for key, value in service["environment"].items():
            if "PASS" in key or "COOKIE" in key:
                assert REQUIRED_VARIABLE.match(value), f"{key} must be a required variable"
        text = json.dumps(service)
        assert ":-" not in text, "no variable may fall back to a default"


def test_the_files_publish_distinct_ports():
    seen: dict[int, str] = {}
    for name in FILES:
        for svc_name, service in load(name)["services"].items():
            for port in service["ports"]:
                published = int(port["published"])
                assert published not in seen, f"{name}:{svc_name} reuses {seen.get(published)}"
                seen[published] = f"{name}:{svc_name}"


# --- brokers.yml is what the docker runtime creates -------------------------------------


@pytest.fixture(scope="module")
def created():
    """The runtime's create calls for every broker, at the lab's default port block
    (the compose files' block). Readiness is not the point here: nothing of this test
    answers on those ports, so `up` gives up at once after creating the containers."""
    settings = isolated_settings(port_base=DEFAULT_PORT_BASE)
    with (
        socket_dir() as path,
        DockerDouble(path / "docker.sock") as engine,
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setenv("DOCKER_HOST", engine.url)
        runtime = DockerRuntime(settings, start_timeout=0.2)
        with contextlib.suppress(LabError):
            runtime.up(list(registry.names()))  # not only the default set
        calls = engine.calls_to("POST", "/containers/create")
        secrets = {b: runtime.endpoint(b).password for b in registry.names()}
        runtime.down([])
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    bodies = {c.body["Labels"]["broker-lab.broker"]: c.body for c in calls}
    assert set(bodies) == set(registry.names())
    return bodies, secrets


@pytest.mark.parametrize("broker", registry.names())
def test_brokers_yml_matches_the_runtime(created, broker):
    bodies, secrets = created
    body = bodies[broker]
    service = load("brokers.yml")["services"][broker]

    assert service["image"] == body["Image"]
    assert service["hostname"] == body["Hostname"]
    assert service["labels"].items() <= body["Labels"].items()

    def resolve(value: str) -> str:
        # A required password variable stands for the runtime's generated password.
        return secrets[broker] if REQUIRED_VARIABLE.match(value) else unescape(value)

    compose_env = {k: resolve(v) for k, v in service["environment"].items()}
    assert compose_env == dict(item.split("=", 1) for item in body["Env"])

    assert [unescape(c) for c in service.get("command", [])] == (body.get("Cmd") or [])

    compose_ports = {(p["host_ip"], p["published"], f"{p['target']}/tcp") for p in service["ports"]}
    runtime_ports = {
        (b["HostIp"], b["HostPort"], container)
        for container, spec in body["HostConfig"]["PortBindings"].items()
        for b in spec
    }
    assert compose_ports == runtime_ports

    check, hc = body["Healthcheck"], service["healthcheck"]
    assert [unescape(t) for t in hc["test"]] == check["Test"]
    assert seconds(hc["interval"]) * 10**9 == check["Interval"]
    assert seconds(hc["timeout"]) * 10**9 == check["Timeout"]
    assert seconds(hc["start_period"]) * 10**9 == check["StartPeriod"]
    assert hc["retries"] == check["Retries"]

    assert seconds(service["stop_grace_period"]) == body["StopTimeout"]
    shm = service.get("shm_size")
    assert (int(shm[:-1]) * 2**20 if shm else None) == body["HostConfig"].get("ShmSize")


# --- the clusters -----------------------------------------------------------------------


def kafka_settings(service: dict) -> dict[str, str]:
    return {k: v for k, v in service["environment"].items() if k.startswith("KAFKA_")}


def test_kafka_cluster_is_three_kraft_nodes_of_the_same_kafka():
    single = load("brokers.yml")["services"]["kafka"]
    nodes = load("kafka-cluster.yml")["services"]
    assert len(nodes) == 3
    voters = {n["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for n in nodes.values()}
    assert voters == {",".join(f"{i}@kafka-{i}:19093" for i in (1, 2, 3))}
    assert {n["environment"]["KAFKA_NODE_ID"] for n in nodes.values()} == {"1", "2", "3"}
    assert len({n["environment"]["CLUSTER_ID"] for n in nodes.values()}) == 1

    replicated = {
        "KAFKA_DEFAULT_REPLICATION_FACTOR": "3",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "3",
        "KAFKA_MIN_INSYNC_REPLICAS": "2",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "2",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "2",
    }
    per_node = {
        "KAFKA_NODE_ID",
        "KAFKA_CONTROLLER_QUORUM_VOTERS",
        "KAFKA_LISTENERS",
        "KAFKA_ADVERTISED_LISTENERS",
        "KAFKA_INTER_BROKER_LISTENER_NAME",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
    }
    shared = {k: v for k, v in kafka_settings(single).items() if k not in per_node}
    for name, node in nodes.items():
        assert node["image"] == single["image"] and node["hostname"] == name
        env = node["environment"]
        assert {k: v for k, v in env.items() if k in replicated} == replicated
        same = {
            k: v for k, v in kafka_settings(node).items() if k in shared and k not in replicated
        }
        assert same == {k: v for k, v in shared.items() if k not in replicated}
        [port] = node["ports"]
        advertised = dict(x.split("://") for x in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        assert advertised["EXTERNAL"] == f"127.0.0.1:{port['published']}"
        assert advertised["INTERNAL"] == f"{name}:19092"
        assert str(port["target"]) == port["published"]  # published 1:1, as advertised
        assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"


def test_rabbitmq_cluster_is_three_nodes_with_quorum_queues():
    single = load("brokers.yml")["services"]["rabbitmq"]
    doc = load("rabbitmq-cluster.yml")
    nodes = doc["services"]
    assert len(nodes) == 3
    [config] = doc["configs"].values()
    conf = dict(
        line.split(" = ", 1) for line in unescape(config["content"]).splitlines() if line.strip()
    )
    assert conf["cluster_formation.peer_discovery_backend"] == "classic_config"
    assert conf["default_queue_type"] == "quorum"
    listed = {v for k, v in conf.items() if k.startswith("cluster_formation.classic_config.nodes.")}
    assert listed == {f"rabbit@{node['hostname']}" for node in nodes.values()}
    cookies = {n["environment"]["RABBITMQ_ERLANG_COOKIE"] for n in nodes.values()}
    assert len(cookies) == 1 and REQUIRED_VARIABLE.match(cookies.pop())
    for node in nodes.values():
        assert node["image"] == single["image"]
        assert node["healthcheck"] == single["healthcheck"]
        assert node["environment"].items() >= single["environment"].items()
        assert [c["source"] for c in node["configs"]] == list(doc["configs"])


def test_generate_check_reports_a_stale_file(tmp_path, monkeypatch, capsys):
    gen = generator()
    for name in FILES:
        shutil.copy(COMPOSE / name, tmp_path / name)
    monkeypatch.setattr(gen, "HERE", Path(tmp_path))
    assert gen.main(["--check"]) == 0
    (tmp_path / "brokers.yml").write_text("name: hand-edited\n")
    assert gen.main(["--check"]) == 1
    assert "out of date: brokers.yml" in capsys.readouterr().err
    assert gen.main([]) == 0
    assert (tmp_path / "brokers.yml").read_text() == (COMPOSE / "brokers.yml").read_text()
