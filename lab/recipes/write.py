"""Recipes written back as TOML: the capacity planner's generated day, and a recipe changed
on the Start screen and saved as a new file.

Python reads TOML (tomllib) but does not write it; recipes only hold strings, numbers,
booleans, lists, tables and arrays of tables, so this small writer covers them without
another dependency. `save` reads the file back with the recipe loader: what it wrote is
what `lab run` will run.
"""

import json
import re
from pathlib import Path

from lab.errors import LabError
from lab.recipes.model import Recipe
from lab.recipes.parse import load, parse

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
ALWAYS = ("name", "description")  # written even when they are the defaults


def dumps(data: dict) -> str:
    """TOML for a recipe's tables: top-level keys first, then [tables] and [[arrays]]."""
    lines: list[str] = []
    _table(lines, [], data)
    return "\n".join(lines).strip() + "\n"


def changed_fields(recipe: Recipe) -> dict:
    """The recipe as a file that says only what differs from a default recipe (and its
    name and description): short enough for a person to read and edit."""
    default = parse({"name": recipe.name}).to_dict()
    data = _difference(recipe.to_dict(), default)
    head = {k: getattr(recipe, k) for k in ALWAYS}
    return head | {k: v for k, v in data.items() if k not in ALWAYS}


def save(data: dict, path: Path) -> Recipe:
    """Write the recipe file and load it back as `lab run` would."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(data))
    except OSError as exc:
        raise LabError(f"cannot write the recipe {path}: {exc.strerror}") from None
    return load(str(path))


def _difference(data: dict, default: dict) -> dict:
    out = {}
    for key, value in data.items():
        base = default.get(key)
        if isinstance(value, dict) and isinstance(base, dict):
            inner = _difference(value, base)
            if inner:
                out[key] = inner
        elif value != base:
            out[key] = value
    return out


def _is_table(value: object) -> bool:
    return isinstance(value, dict)


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(lines: list[str], path: list[str], data: dict) -> None:
    plain = {k: v for k, v in data.items() if not _is_table(v) and not _is_table_array(v)}
    if path and (plain or not data):
        lines += ["", f"[{'.'.join(map(_key, path))}]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in plain.items()]
    for key, value in data.items():
        if _is_table(value):
            _table(lines, [*path, key], value)
    for key, value in data.items():
        if _is_table_array(value):
            for item in value:
                lines += ["", f"[[{'.'.join(map(_key, [*path, key]))}]]"]
                lines += [f"{_key(k)} = {_value(v)}" for k, v in item.items()]


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string: the same escapes, \uXXXX included.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")
