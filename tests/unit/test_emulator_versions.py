"""An emulator's version names its server: "3.3.3" alone would read as the version of the
service it stands in for, which has none."""

import pytest

from lab import brokers as registry
from lab.settings import Settings

EMULATORS = [name for name, plugin in registry.plugins().items() if plugin.emulates]
SERVERS = {"sqs": "ElasticMQ ", "pubsub": "Pub/Sub emulator ", "kinesis": "kinesalite "}


def test_every_emulator_has_a_server_name():
    assert sorted(EMULATORS) == sorted(SERVERS)


@pytest.mark.parametrize("name", EMULATORS)
def test_native_and_docker_name_the_same_server(name):
    settings = Settings.from_env()
    plugin = registry.get(name)
    container = plugin.service(settings).version
    assert container and container.startswith(SERVERS[name]), container
    native = plugin.native(settings)
    assert native.missing() is None, native.missing()  # says how to install it
    assert native.version() == container, "the image runs the release setup installs"
