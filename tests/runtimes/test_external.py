"""The external runtime, for real: the session's native brokers addressed by URL, as a
user addresses brokers the lab did not start. Passwords never show."""

import json
import os
import shutil
from urllib.parse import quote

import pytest

from lab import brokers as registry
from lab.endpoints import Endpoint
from lab.errors import LabError
from lab.runtimes import BrokerState, get_runtime
from lab.runtimes.external import ExternalRuntime, load_config, parse_broker_urls, parse_url
from tests.helpers import isolated_settings, run_lab
from tests.runtimes.roundtrip import ROUNDTRIP


@pytest.fixture(scope="module")
def native(session_lab):
    for broker in registry.names():
        session_lab.endpoint(broker)
    return session_lab.runtime


def url_of(ep: Endpoint) -> str:
    """The URL a user would type, password included. Written out here because
    Endpoint.url drops a password that has no user name (Redis's)."""
    auth = (
        f"{quote(ep.username or '', safe='')}:{quote(ep.password, safe='')}@" if ep.password else ""
    )
    path = "/" + quote(ep.path, safe="") if ep.path else ""
    return f"{ep.scheme}://{auth}{ep.host}:{ep.port}{path}"


@pytest.fixture(scope="module")
def urls(native):
    """broker -> URL with its password, as a user would pass it."""
    return {b: url_of(native.endpoint(b)) for b in registry.names()}


@pytest.fixture(scope="module")
def passwords(native):
    return [native.endpoint(b).password for b in registry.names() if native.endpoint(b).password]


@pytest.fixture
def external(native, urls):
    return get_runtime("external", native.settings, [f"{b}={u}" for b, u in urls.items()])


def assert_no_password(text, passwords):
    for password in passwords:
        assert password not in text


# --- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("kafka://broker-1:9093", Endpoint("kafka", "kafka", "broker-1", 9093)),
        ("kafka://10.0.0.5", Endpoint("kafka", "kafka", "10.0.0.5", 9092)),
        (
            "amqp://lab:p%40ss@mq/orders",
            Endpoint("rabbitmq", "amqp", "mq", 5672, "lab", "p@ss", "orders"),
        ),
        ("amqp://lab:pw@mq:5673/%2F", Endpoint("rabbitmq", "amqp", "mq", 5673, "lab", "pw", "/")),
        ("redis://:pw@cache:6380/2", Endpoint("redis", "redis", "cache", 6380, None, "pw", "2")),
        ("redis://cache", Endpoint("redis", "redis", "cache", 6379)),
        (
            "postgresql://lab@db/queue",
            Endpoint("postgres", "postgresql", "db", 5432, "lab", None, "queue"),
        ),
        (
            "postgres://lab:pw@db:6432/q",
            Endpoint("postgres", "postgresql", "db", 6432, "lab", "pw", "q"),
        ),
    ],
)
def test_urls_become_endpoints(url, expected):
    ep = parse_url(url)
    assert (ep.broker, ep.host, ep.port, ep.username, ep.password, ep.path) == (
        expected.broker,
        expected.host,
        expected.port,
        expected.username,
        expected.password,
        expected.path,
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("amqps://lab:s3cr3t-pw@mq/", "uses TLS"),
        ("http://lab:s3cr3t-pw@mq/", "has no broker scheme: start it with one of kafka://"),
        ("redis=amqp://lab:s3cr3t-pw@mq/", "is a rabbitmq URL, not a redis one"),
        ("kafka://k1:9092,k2:9092", "names several hosts"),
        ("amqp://lab:s3cr3t-pw@mq:http/", "has a port that is not a number"),
        ("redis://:s3cr3t-pw@cache/zero", "has a database that is not a number"),
        ("postgresql://lab:s3cr3t-pw@db/q?sslmode=require", "has ?options"),
        ("amqp://lab:s3cr3t-pw@/", "has no host"),
        ("rabbit=amqp://lab:s3cr3t-pw@mq/", "unknown broker 'rabbit' (did you mean 'rabbitmq'?)"),
    ],
)
def test_bad_urls_say_what_is_wrong_without_the_password(value, message):
    with pytest.raises(LabError) as caught:
        parse_broker_urls([value])
    text = str(caught.value)
    assert message in text
    assert "s3cr3t-pw" not in text and "\n" not in text


# --- against real brokers ---------------------------------------------------------------


def test_status_health_and_endpoints_of_brokers_given_by_url(external, native, passwords):
    rows = external.status([])
    assert [(r.broker, r.state) for r in rows] == [
        (b, BrokerState.HEALTHY) for b in registry.names()
    ]
    assert all(r.runtime == "external" for r in rows)
    for row in rows:
        assert row.endpoint == native.endpoint(row.broker).redacted()
    assert {r.broker for r in rows if r.version} >= {"rabbitmq", "redis", "postgres"}
    for broker in registry.names():
        assert external.health(broker)
        assert external.endpoint(broker) == native.endpoint(broker)
    assert_no_password(json.dumps([r.to_dict() for r in rows]), passwords)
    assert_no_password(repr(external), passwords)
    assert_no_password(repr(external.endpoint("postgres")), passwords)


@pytest.mark.parametrize("broker", registry.names())
def test_a_real_message_through_the_external_endpoint(external, broker):
    payload = os.urandom(16)
    assert ROUNDTRIP[broker](external.endpoint(broker), payload) == payload


def test_up_checks_that_they_answer_and_down_leaves_them_running(external, native):
    progress = []
    rows = external.up(["redis", "postgres"], lambda b, m: progress.append((b, m)))
    assert [r.state for r in rows] == [BrokerState.HEALTHY] * 2
    assert [b for b, _ in progress] == ["redis", "postgres"]
    assert all(m.startswith("answers at ") for _, m in progress)
    external.down([])
    assert native.health("redis") and native.health("postgres")


@pytest.mark.parametrize("action", ["kill", "pause", "resume", "restart"])
def test_process_faults_are_not_available(external, native, passwords, action):
    with pytest.raises(LabError) as caught:
        getattr(external, action)("rabbitmq")
    text = str(caught.value)
    assert text.startswith(f"{action} is not available for rabbitmq on the external runtime")
    assert "did not start it" in text and "chaos proxy" in text
    assert native.endpoint("rabbitmq").redacted() in text
    assert_no_password(text, passwords)
    assert native.health("rabbitmq")  # untouched


def test_stats_and_logs(external, passwords):
    assert external.stats("postgres") is None
    text = external.logs("postgres")
    assert "is run by someone else" in text and "it answers now" in text
    assert_no_password(text, passwords)


def test_a_wrong_password_is_unhealthy_and_stays_secret(native, passwords):
    ep = native.endpoint("postgres")
    wrong = f"postgresql://{ep.username}:not-the-Pa55word@{ep.host}:{ep.port}/{ep.path}"
    runtime = ExternalRuntime(native.settings, parse_broker_urls([wrong]), wait_seconds=0.5)
    [row] = runtime.status(["postgres"])
    assert row.state is BrokerState.UNHEALTHY and row.detail.startswith("does not answer")
    with pytest.raises(LabError) as caught:
        runtime.up(["postgres"])
    for text in (json.dumps(row.to_dict()), str(caught.value), repr(runtime)):
        assert "not-the-Pa55word" not in text
        assert_no_password(text, passwords)
    assert "check the URL, the credentials" in str(caught.value)


def test_brokers_without_a_url(native, urls):
    runtime = get_runtime("external", native.settings, [urls["redis"]])
    rows = {r.broker: r for r in runtime.status([])}
    assert rows["redis"].state is BrokerState.HEALTHY
    assert rows["kafka"].state is BrokerState.STOPPED and "no URL" in rows["kafka"].detail
    with pytest.raises(LabError, match="the external runtime has no URL for kafka: pass"):
        runtime.up(["kafka"])
    assert [r.broker for r in runtime.up([])] == ["redis"]  # the configured ones


# --- a config file, the CLI -------------------------------------------------------------


def write_config(path, urls):
    path.write_text("[brokers]\n" + "".join(f'{b} = "{u}"\n' for b, u in urls.items()))
    path.chmod(0o600)
    return path


def test_a_config_file_named_by_the_environment(native, urls, tmp_path, monkeypatch):
    config = write_config(tmp_path / "brokers.toml", urls)
    monkeypatch.setenv("LAB_EXTERNAL_CONFIG", str(config))
    runtime = get_runtime("auto", native.settings)
    assert runtime.name == "external"
    assert {r.state for r in runtime.status([])} == {BrokerState.HEALTHY}


def test_the_cli_with_a_config_file_and_with_flags(native, urls, passwords, tmp_path):
    config = write_config(tmp_path / "brokers.toml", urls)
    by_file = run_lab(native.settings, "status", "--json", LAB_EXTERNAL_CONFIG=str(config))
    by_flag = run_lab(
        native.settings, "--broker-url", urls["rabbitmq"], "--broker-url", urls["redis"], "status"
    )
    assert by_file.returncode == 0, by_file.stderr
    assert by_flag.returncode == 0, by_flag.stderr
    rows = json.loads(by_file.stdout)
    assert {r["runtime"] for r in rows} == {"external"}
    assert {r["state"] for r in rows} == {"healthy"}
    assert "amqp://lab:***@127.0.0.1" in by_flag.stdout
    for done in (by_file, by_flag):
        assert_no_password(done.stdout + done.stderr, passwords)


@pytest.fixture
def settings():
    s = isolated_settings(port_base=31500)
    yield s
    shutil.rmtree(s.state_dir, ignore_errors=True)


def test_cli_errors_are_one_line(settings, urls, passwords):
    done = run_lab(settings, "--runtime", "native", "--broker-url", urls["redis"], "status")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "lab: error: --broker-url is for the external runtime, not 'native': drop --runtime"
    ]
    done = run_lab(settings, "--broker-url", "amqps://lab:s3cr3t-pw@mq/", "status")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "uses TLS" in done.stderr and "s3cr3t-pw" not in done.stderr
    assert_no_password(done.stderr, passwords)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('kafka = "kafka://h:9092"\n', "has no [brokers] table"),
        ('[brokers]\nnats = "nats://h"\n', "unknown broker in"),
        ("[brokers]\nredis = 6379\n", "brokers.redis must be a URL string"),
        ('[brokers]\nredis = "redis://:s3cr3t-pw@h/x"\n', "brokers.redis: 'redis://:***@h/x'"),
        ('[brokers]\nredis = "redis://:s3cr3t-pw@h\n', "is not valid TOML (at line 2"),
    ],
)
def test_bad_config_files(tmp_path, text, message):
    path = tmp_path / "brokers.toml"
    path.write_text(text)
    with pytest.raises(LabError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert "s3cr3t-pw" not in str(caught.value)


def test_a_missing_config_file(tmp_path):
    with pytest.raises(LabError, match=r"cannot read the external brokers file .*nope\.toml"):
        load_config(tmp_path / "nope.toml")
