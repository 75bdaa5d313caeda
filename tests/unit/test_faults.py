"""Fault texts and recipe faults: times and duration arguments read like a recipe's
durations, and a fault that can never happen is refused in the --fault words."""

import pytest

from lab.faults import parse_fault
from lab.recipes import RecipeError, parse


@pytest.mark.parametrize(
    ("text", "at"),
    [("1h kill redis", 3600.0), (".5 kill redis", 0.5), ("90 kill", 90.0), ("1.5m kill", 90.0)],
)
def test_fault_times_are_durations(text, at):
    assert parse_fault(text)[0] == at


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("5 peak redis x=10 for=500ms", {"x": 10.0, "for": 0.5}),
        ("5 peak for=2m", {"for": 120.0}),
        ("5 peak for=.5", {"for": 0.5}),
        ("5 peak for=3", {"for": 3.0}),
    ],
)
def test_the_for_argument_is_a_duration(text, args):
    assert parse_fault(text)[1].args == args


def test_a_recipe_fault_argument_is_a_duration_too():
    recipe = parse({"faults": [{"at": "2s", "action": "peak", "args": {"for": "5s", "x": 3}}]})
    assert recipe.faults[0].args == {"for": 5.0, "x": 3}
    with pytest.raises(RecipeError) as err:
        parse({"faults": [{"at": 2, "action": "peak", "args": {"for": "soon"}}]}, "r.toml")
    assert str(err.value) == (
        "r.toml: faults[0].args: fault 'peak': for: 'soon' is not a duration;"
        " write e.g. 30, 30s, 500ms, 2m, 1h"
    )


def test_a_recipe_fault_on_a_broker_not_in_its_brokers():
    data = {"brokers": ["redis"], "faults": [{"at": 2, "action": "kill", "broker": "kafka"}]}
    with pytest.raises(RecipeError) as err:
        parse(data, "r.toml")
    assert str(err.value) == "r.toml: faults[0].broker: kafka is not in this run (redis)"
