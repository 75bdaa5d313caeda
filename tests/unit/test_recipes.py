"""Recipes: the shipped ones load; each kind of mistake names file, field, value and choices."""

import pytest

from lab import recipes
from lab.errors import LabError
from lab.recipes import RecipeError, parse


def test_shipped_recipes_load_with_descriptions():
    shipped = {r.name: r for r in recipes.list_shipped()}
    assert {"quickstart", "steady", "morning-rush", "slow-consumer"} <= set(shipped)
    for recipe in shipped.values():
        assert recipe.description, recipe.name
    assert shipped["quickstart"].duration == 20


def test_every_field_has_a_default():
    recipe = parse({})
    assert recipe.pattern == "work-queue" and recipe.rate.profile == "steady"
    assert recipe.brokers == ("kafka", "rabbitmq", "redis", "postgres")


def test_units():
    recipe = parse({"duration": "2m", "warmup": "500ms", "message": {"size": "1KiB"}})
    assert recipe.duration == 120 and recipe.warmup == 0.5 and recipe.message.size == 1024


def test_overrides_are_validated_like_the_file(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('duration = "10s"\n[rate]\nrate = 100\n')
    recipe = recipes.load(
        str(path), {"duration": ("--duration", "30"), "rate.rate": ("--rate", 250)}
    )
    assert recipe.duration == 30 and recipe.rate.rate == 250
    # An override's mistake is the override's, said with its name, not the file's.
    with pytest.raises(LabError, match=r"^--rate: -5 is too small \(at least 0.001\)$"):
        recipes.load(str(path), {"rate.rate": ("--rate", -5)})


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (
            {"consumers": {"procesing_time": 1}},
            ["consumers.procesing_time", "unknown field", "did you mean 'processing_time'"],
        ),
        ({"rate": {"profile": "stedy"}}, ["rate.profile", "'stedy'", "steady, ramp, spike, curve"]),
        ({"duration": "5x"}, ["duration", "'5x'", "30s"]),
        ({"partitions": 0}, ["partitions", "too small (at least 1)"]),
        ({"poison_share": 1.5}, ["poison_share", "too large (at most 1)"]),
        ({"producers": {"count": "two"}}, ["producers.count", "whole number", "'two'"]),
        ({"pattern": "request-reply", "poison_share": 0.1}, ["poison_share", "not built"]),
        ({"requests": {"mode": "async"}}, ["requests", "request-reply"]),
        ({"pattern": "request-reply", "requests": {"mode": "both"}}, ["requests.mode", "sync"]),
        ({"subscribers": {"count": 2}}, ["subscribers", "pub-sub"]),
        ({"pattern": "pub-sub", "subscribers": {"count": 2, "slow": 3}}, ["subscribers.slow"]),
        ({"pattern": "pub-sub", "poison_share": 0.1}, ["poison_share", "not built yet"]),
        ({"pattern": "pub-sub", "retention": {"max_messages": 5}}, ["retention", "not built"]),
        ({"consumers": {"poll": "medium"}}, ["consumers.poll", "long, short"]),
        ({"brokers": ["kafak"]}, ["brokers[0]", "did you mean 'kafka'"]),
        ({"rate": {"profile": "spike", "peak": 0}}, ["rate.peak", "peak > 0"]),
        ({"rate": {"profile": "curve"}}, ["rate.curve", "relative rates"]),
        ({"message": {"distribution": "uniform", "min": 500, "max": 100}}, ["message.min"]),
        ({"warmup": "30s", "duration": "10s"}, ["warmup", "leaves nothing"]),
        ({"rate": 5}, ["rate", "expected a table"]),
    ],
)
def test_mistakes(data, words):
    with pytest.raises(RecipeError) as err:
        parse(data, "recipes/mine.toml")
    message = str(err.value)
    assert message.startswith("recipes/mine.toml: ")
    for word in words:
        assert word in message, message


def test_bad_toml_and_unknown_recipe(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("duration = \n")
    with pytest.raises(LabError, match="not valid TOML"):
        recipes.load(str(path))
    with pytest.raises(Exception, match="quickstart"):
        recipes.load("no-such-recipe")
