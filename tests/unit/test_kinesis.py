"""Kinesis's parts that need no server: sequence numbers as positions, the dead-letter
envelope, checkpoints and leases, URLs, and what the settings say."""

import pytest

from lab.brokers.contract import BrokerError, DeadLetterInfo, RunSpec
from lab.brokers.kinesis import PLUGIN, client
from lab.brokers.kinesis.checkpoints import LEASE_SECONDS, CheckpointStore
from lab.brokers.kinesis.client import endpoint_url, order_key, position, region, stream_name
from lab.brokers.kinesis.dlq import envelope, open_envelope
from lab.brokers.kinesis.settings import retention_hours, run_settings
from lab.brokers.kinesis.streams import MAX_PUT_BYTES, chunks
from lab.endpoints import Endpoint
from lab.errors import LabError
from lab.recipes import parse
from lab.runtimes.external import parse_broker_urls, parse_url


def kinesalite_sequence(shard_created: int, shard: int, index: int, seconds: int) -> str:
    """A sequence number as kinesalite writes one (db/index.js, stringifySequence)."""
    digits = f"2{shard_created:09x}{shard % 16:x}{index:016x}00{seconds:09x}{shard:08x}2"
    return str(int(digits, 16))


def test_a_kinesalite_sequence_number_is_its_sequence_index():
    # Taken from a real kinesalite: records 0 and 1 of shard 3, and a later one of shard 0.
    assert position("49680755601653604955491626952911637828993857659057733682") == 0
    assert position("49680755601653604955491626952912846754813472288232439858") == 1
    assert position("49680755601586702719896035133051780352556094451915685890") == 40999
    assert position(kinesalite_sequence(1_700_000_000, 17, 2**62, 1_700_000_100)) == 2**62


def test_positions_order_a_shards_records_whatever_their_times():
    later_but_first = kinesalite_sequence(1_700_000_000, 2, 5, 1_700_009_999)
    earlier_but_next = kinesalite_sequence(1_700_000_000, 2, 6, 1_700_000_001)
    assert int(later_but_first) < int(earlier_but_next)
    assert position(later_but_first) < position(earlier_but_next)


def test_offsets_are_their_own_positions_and_other_numbers_are_unknown():
    assert position("0") == 0 and position("123456") == 123456
    unknown = str(2**100 + 12345)
    assert position(unknown) == -1
    assert order_key(unknown) == int(unknown), "still ordered, by the number itself"


def test_the_dead_letter_envelope_keeps_payload_and_info():
    info = DeadLetterInfo("poison: processing failed", 3, 1000.25, 1002.5)
    payload = bytes(range(256)) * 4
    assert open_envelope(envelope(payload, info)) == (payload, info)
    # A record someone else wrote is its own payload.
    assert open_envelope(b"not ours") == (b"not ours", DeadLetterInfo("", 0, 0.0, 0.0))


def test_checkpoints_only_move_forward(tmp_path):
    store = CheckpointStore("lab-x", tmp_path)
    assert store.checkpoints("lab-x") == {}
    low, high = (kinesalite_sequence(1_700_000_000, 0, i, 1_700_000_050) for i in (10, 20))
    store.advance("lab-x", {"shardId-000000000000": high})
    store.advance("lab-x", {"shardId-000000000000": low, "shardId-000000000001": low})
    assert store.checkpoints("lab-x") == {
        "shardId-000000000000": high,
        "shardId-000000000001": low,
    }
    store.remove()
    assert not list(tmp_path.iterdir())


def test_leases_go_to_whoever_holds_none_and_expire(tmp_path):
    store = CheckpointStore("lab-x", tmp_path)
    shards = ["shardId-000000000000", "shardId-000000000001"]
    assert store.claim("a", shards, now=100.0) == shards
    assert store.claim("b", shards, now=101.0) == []
    assert store.claim("a", shards, now=105.0) == shards, "renewed"
    assert store.claim("b", shards, now=105.0 + LEASE_SECONDS + 1) == shards, "expired"
    store.release("b")
    assert store.claim("c", shards[:1], now=200.0) == shards[:1]


def test_an_unwritable_state_dir_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LabError, match="set LAB_STATE_DIR"):
        CheckpointStore("lab-x", blocker / "checkpoints").create()


def test_put_records_calls_hold_500_records_and_5_mib():
    assert list(chunks([100] * 1200)) == [(0, 500), (500, 1000), (1000, 1200)]
    assert list(chunks([100] * 10, limit=4)) == [(0, 4), (4, 8), (8, 10)]
    big = MAX_PUT_BYTES // 3
    assert list(chunks([big] * 4)) == [(0, 3), (3, 4)]


@pytest.mark.parametrize(
    ("url", "scheme", "port", "endpoint", "signing_region"),
    [
        ("kinesis://127.0.0.1:4567", "kinesis", 4567, "http://127.0.0.1:4567", "us-east-1"),
        (
            "kinesis+https://kinesis.eu-west-1.amazonaws.com",
            "kinesis+https",
            443,
            "https://kinesis.eu-west-1.amazonaws.com",
            "eu-west-1",
        ),
        (
            "kinesis+https://yds.serverless.yandexcloud.net/ru-central1/b1gx/etny",
            "kinesis+https",
            443,
            "https://yds.serverless.yandexcloud.net",
            "ru-central1",
        ),
    ],
)
def test_urls_of_the_emulator_and_the_services(url, scheme, port, endpoint, signing_region):
    ep = parse_url(url)
    assert (ep.broker, ep.scheme, ep.port) == ("kinesis", scheme, port)
    assert endpoint_url(ep) == endpoint
    assert region(ep, None) == signing_region


def test_yandex_data_streams_names_streams_by_database_path():
    ep = parse_url("kinesis+https://yds.serverless.yandexcloud.net/ru-central1/b1gx/etny")
    assert stream_name(ep, "lab-r1") == "/ru-central1/b1gx/etny/lab-r1"
    assert stream_name(Endpoint("kinesis", "kinesis", "h", 1), "lab-r1") == "lab-r1"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("kinesis://kinesis.eu-west-1.amazonaws.com", "is plain http on port 443"),
        ("kinesis+https://AKIA:s3cr3t-pw@kinesis.eu-west-1.amazonaws.com", "carries credentials"),
        ("kinesis+https://yds.serverless.yandexcloud.net/b1gx", "is not a Yandex Data Streams"),
    ],
)
def test_bad_kinesis_urls_are_one_line(value, message):
    with pytest.raises(LabError) as caught:
        parse_broker_urls([value])
    text = str(caught.value)
    assert message in text and "s3cr3t-pw" not in text and "\n" not in text


def spec_of(recipe: dict, url: str = "kinesis://127.0.0.1:4567") -> RunSpec:
    return RunSpec("r1", "kinesis", parse_url(url), parse(recipe))


def test_retention_is_24_hours_at_the_least():
    assert retention_hours(0) == 24
    assert retention_hours(10) == 24
    assert retention_hours(3 * 86400 + 1) == 73
    settings = run_settings(spec_of({"retention": {"max_age": "10s"}}), "lab-r1", "lab-r1.dlq")
    assert "RetentionPeriodHours = 24 for max_age 10 s" in settings["retention"]
    assert (
        "not applied" in settings["retention_max_messages"]
        if "retention_max_messages" in (settings)
        else True
    )


def test_settings_say_what_was_not_applied_and_what_the_emulator_does_not_do():
    local = run_settings(
        spec_of({"retention": {"max_messages": 200, "max_bytes": 1000}}), "lab-r1", "lab-r1.dlq"
    )
    assert "not applied" in local["retention_max_messages"]
    assert "not applied" in local["retention_max_bytes"]
    assert "SubscribeToShard" in local["not_emulated"]
    assert "changes nothing" in local["durability"]
    service = run_settings(
        spec_of({}, "kinesis+https://kinesis.eu-west-1.amazonaws.com"), "lab-r1", "lab-r1.dlq"
    )
    assert "not_emulated" not in service
    assert "kinesis.eu-west-1.amazonaws.com" in service["server"]


def test_a_service_without_credentials_is_one_clear_error(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no metadata service off this host
    monkeypatch.setattr(client, "_sessions", [])
    with pytest.raises(BrokerError, match="no AWS credentials: set AWS_ACCESS_KEY_ID"):
        client.make_client(parse_url("kinesis+https://kinesis.eu-west-1.amazonaws.com"))
    # The emulator needs none.
    client.make_client(parse_url("kinesis://127.0.0.1:4567")).close()


def test_the_plugin_says_what_kinesis_is():
    assert PLUGIN.assigns_partitions and not PLUGIN.default
    assert PLUGIN.emulates and PLUGIN.retention_limits == ("max_age",)
    assert PLUGIN.ports == {"kinesis": 567}
