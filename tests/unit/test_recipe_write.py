"""Recipes written back as TOML read back as the same recipe: every shipped one, whole or
as the fields that differ from the defaults."""

import tomllib

import pytest

from lab.errors import LabError
from lab.recipes import list_shipped, load, parse
from lab.recipes.write import changed_fields, dumps, save

SHIPPED = list_shipped()


@pytest.mark.parametrize("recipe", SHIPPED, ids=[r.name for r in SHIPPED])
def test_a_shipped_recipe_reads_back_the_same(recipe):
    assert parse(tomllib.loads(dumps(recipe.to_dict()))) == recipe
    assert parse(tomllib.loads(dumps(changed_fields(recipe)))) == recipe


def test_only_what_differs_from_the_defaults_is_written():
    recipe = parse(
        {"name": "mine", "pattern": "pub-sub", "rate": {"rate": 250}, "subscribers": {"count": 3}}
    )
    data = changed_fields(recipe)
    assert data == {
        "name": "mine",
        "description": "",
        "pattern": "pub-sub",
        "rate": {"rate": 250.0},
        "subscribers": {"count": 3},
    }


def test_strings_tables_and_arrays_of_tables_are_toml():
    data = {
        "name": 'a "quoted" name\nwith ünïcode',
        "brokers": ["kafka", "redis"],
        "stream": {"keys": 10, "windows": {"kind": "tumbling", "size": 10.0}},
        "faults": [{"at": 2.0, "action": "peak", "args": {"x": 10, "for": 5.0}}],
        "odd key": True,
    }
    assert tomllib.loads(dumps(data)) == data


def test_save_writes_a_file_lab_run_loads(tmp_path):
    recipe = parse({"name": "saved", "pattern": "pub-sub", "subscribers": {"count": 2}})
    path = tmp_path / "recipes" / "saved.toml"
    assert save(changed_fields(recipe), path) == recipe
    assert load(str(path)) == recipe


def test_a_recipe_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(LabError, match="cannot write the recipe") as err:
        save({"name": "x"}, tmp_path / "file" / "x.toml")
    assert "\n" not in str(err.value)
