"""RabbitMQ's settings read back from the node itself (rabbitmqctl), not as intended: the
run's queues' type, durability and arguments, and nothing from a node the lab did not start."""

import pytest

from lab.brokers import adapter_for
from lab.brokers.contract import RunSpec
from lab.recipes import parse
from tests.brokers.helpers import new_adapter, provisioned

pytestmark = pytest.mark.brokers


def test_a_classic_queue_with_retention_as_the_node_lists_it(session_lab):
    recipe = {"retention": {"max_messages": 500}, "rabbitmq": {"queue_type": "classic"}}
    with provisioned(new_adapter(session_lab, "rabbitmq", recipe)) as adapter:
        found = adapter.read_settings()
    spec = adapter.spec
    assert found["queue_type"] == "classic" and found["queue_durable"] == "true", found
    assert found["queue_arguments"] == (
        "x-dead-letter-exchange=, "
        f"x-dead-letter-routing-key={spec.queue}.dropped, "
        "x-max-length=500, x-overflow=drop-head, x-queue-type=classic"
    ), found
    assert found["queue_policy"] == "none"
    assert found["dead_letter_queue"] == "classic, durable"
    assert found["dropped_queue"] == "classic, durable"


def test_a_quorum_queue_says_so(session_lab):
    with provisioned(
        new_adapter(session_lab, "rabbitmq", {"rabbitmq": {"queue_type": "quorum"}})
    ) as adapter:
        found = adapter.read_settings()
    assert found["queue_type"] == "quorum" and found["queue_durable"] == "true", found
    assert found["queue_arguments"] == "x-queue-type=quorum"
    assert "dropped_queue" not in found  # no retention limit: no `.dropped` queue


def test_a_node_the_lab_did_not_start_here_is_not_asked(session_lab, tmp_path):
    endpoint = session_lab.endpoint("rabbitmq")
    spec = RunSpec("t-elsewhere", "rabbitmq", endpoint, parse({}), state_dir=tmp_path)
    assert adapter_for(spec).read_settings() == {}
