"""An emulator's column says what it emulates and on which server, in the title's width."""

import dataclasses

import pytest
from rich.cells import cell_len

from lab import brokers as registry
from tests.tui.support import pilot_test, recorded
from tui import make_app
from tui.widgets.broker_column import BrokerColumn, emulator_titles

# The recorded four-broker run, its columns renamed to the emulators with the versions a
# native run reports.
EMULATORS = {
    "kafka": ("sqs", "ElasticMQ 1.7.1"),
    "rabbitmq": ("pubsub", "Pub/Sub emulator 0.8.20"),
    "redis": ("kinesis", "kinesalite 3.3.3"),
}


def emulator_run():
    result = recorded()
    brokers = {}
    for old, (new, version) in EMULATORS.items():
        emulates = registry.get(new).emulates
        brokers[new] = dataclasses.replace(
            result.brokers[old], broker=new, version=version, emulates=emulates
        )
    events = [e for e in result.events if e.broker in (None, *EMULATORS)]
    renamed = {old: new for old, (new, _) in EMULATORS.items()}
    events = [dataclasses.replace(e, broker=renamed.get(e.broker, e.broker)) for e in events]
    return dataclasses.replace(result, brokers=brokers, events=events)


def test_titles_go_from_service_and_server_to_the_bare_name():
    assert emulator_titles(5, "sqs", "SQS", "ElasticMQ 1.7.1") == [
        "5 sqs · SQS emulator: ElasticMQ 1.7.1",
        "5 SQS emulator: ElasticMQ 1.7.1",
        "5 sqs · ElasticMQ 1.7.1",
        "5 sqs · emulator",
        "5 sqs",
    ]
    # A server whose name says it is the service's emulator is not said twice.
    assert emulator_titles(6, "pubsub", "Pub/Sub", "Pub/Sub emulator 0.8.20")[:2] == [
        "6 pubsub · Pub/Sub emulator 0.8.20",
        "6 Pub/Sub emulator 0.8.20",
    ]
    # A replay of a run whose version was not recorded still says what it emulates.
    assert emulator_titles(7, "kinesis", "Kinesis", None)[0] == "7 kinesis · Kinesis emulator"


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
@pilot_test
async def test_each_column_names_the_service_and_the_server_within_its_width(tmp_path, size):
    app = make_app(replay=emulator_run(), replay_speed=1, results_dir=tmp_path, cursor_blink=False)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        for new, version in EMULATORS.values():
            column = app.screen.query_one(f"#column-{new}", BrokerColumn)
            title = column.border_title
            assert cell_len(title) <= column.outer_size.width - 4, (title, column.outer_size)
            display = registry.get(new).display
            assert version in title and display in title, title
            assert registry.get(new).emulates in str(column.tooltip)
            assert version in str(column.tooltip)
