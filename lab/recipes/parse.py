"""TOML recipes into Recipe objects, with errors that name the file, the field, the bad value
and what is allowed."""

import copy
import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Iterable
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from lab import brokers as registry
from lab import durations
from lab.errors import LabError, unknown_choice
from lab.recipes.model import PATTERNS, Fault, Recipe

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"

_UNITS_BYTES = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 10**6,
    "mib": 2**20,
    "gb": 10**9,
    "gib": 2**30,
}


class RecipeError(LabError):
    """What is wrong with a recipe: where (`source`), which field, and the problem."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: {field}: {problem}")
        self.source, self.field, self.problem = source, field, problem


# An override of a recipe field from elsewhere than the file: the field's dotted name ->
# (what to call it in an error, e.g. "--duration", and its value).
Overrides = dict[str, tuple[str, Any]]


def find(name_or_path: str) -> Path:
    """A recipe path as given, or a shipped recipe by name (`quickstart`)."""
    path = Path(name_or_path)
    if path.is_dir():
        raise LabError(f"{path} is a directory, not a recipe: give a recipe's .toml file")
    if path.exists():
        return path
    shipped = RECIPES_DIR / f"{name_or_path}.toml"
    if shipped.exists():
        return shipped
    names = sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))
    raise LabError(f"no recipe '{name_or_path}': give a path or one of {', '.join(names)}")


def recipe_setting(text: str) -> tuple[str, Any]:
    """`FIELD=VALUE` from the command line: the field's dotted name and its value, read as
    a TOML value where it is one (3, 0.5, true, [1, 2]) and as text otherwise (long, 30s)."""
    dotted, sep, raw = text.partition("=")
    dotted = dotted.strip()
    if not sep or not dotted:
        raise LabError(f"--set {text!r}: give FIELD=VALUE, e.g. consumers.poll=short")
    try:
        return dotted, tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return dotted, raw.strip()


def load(name_or_path: str, overrides: Overrides | None = None) -> Recipe:
    """Read a recipe. `overrides` replace fields and get the same checks as the file, but
    a bad one is blamed on where it came from ("--duration: ..."), not on the file."""
    path = find(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise LabError(f"{path}: not a text file (a recipe is TOML)") from None
    except OSError as exc:
        raise LabError(f"cannot read the recipe {path}: {exc.strerror}") from None
    if not overrides:
        return parse(data, str(path))
    parse(data, str(path))  # the file's own mistakes first, named as the file's
    return with_overrides(data, overrides, str(path))


def with_overrides(data: dict[str, Any], overrides: Overrides, source: str) -> Recipe:
    """The recipe `data` with `overrides` in place."""
    data = copy.deepcopy(data)
    for dotted, (_, value) in overrides.items():
        table = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            table = table.setdefault(key, {})
        table[leaf] = value
    try:
        return parse(data, source)
    except RecipeError as exc:
        for dotted, (flag, _) in overrides.items():
            if exc.field == dotted:
                raise LabError(f"{flag}: {exc.problem}") from None
        given = ", ".join(f"{flag} {value}" for flag, value in overrides.values())
        raise LabError(f"{given}: with it, {exc.field}: {exc.problem}") from None


def parse(data: dict[str, Any], source: str = "<recipe>") -> Recipe:
    data = dict(data)
    data.setdefault("name", Path(source).stem if source != "<recipe>" else "unnamed")
    sections = _broker_sections()
    options = {}
    for name, cls in sections.items():
        options[name] = _build(cls, data.pop(name, {}), source, name + ".")
    if not data.get("brokers"):
        data["brokers"] = list(registry.default_names())
    recipe = _build(Recipe, data, source, "", extra=sections)
    recipe = dataclasses.replace(recipe, options=options)
    return _check_whole(recipe, source)


def _broker_sections() -> dict[str, type]:
    """[<broker>] sections the recipe may have: each broker's options dataclass."""
    sections = {n: p.options for n, p in registry.plugins().items() if p.options is not None}
    taken = {f.name for f in dataclasses.fields(Recipe)} & set(sections)
    if taken:
        raise LabError(f"a broker is named like a recipe field ({', '.join(sorted(taken))})")
    return sections


def list_shipped() -> list[Recipe]:
    return [load(str(p)) for p in sorted(RECIPES_DIR.glob("*.toml"))]


def _fail(source: str, name: str, message: str) -> RecipeError:
    return RecipeError(source, name, message)


def _build(cls: type, data: Any, source: str, prefix: str, extra: Iterable[str] = ()) -> Any:
    """`extra`: names that are also fields at this level, though not of `cls` (for a
    better "did you mean")."""
    if not isinstance(data, dict):
        raise _fail(source, prefix.rstrip(".") or "recipe", f"expected a table, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "options"}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, raw in data.items():
        name = prefix + key
        if key not in fields:
            raise _fail(source, name, "unknown field" + _did_you_mean(key, [*fields, *extra]))
        values[key] = _value(hints[key], fields[key], raw, source, name)
    return cls(**values)


def _value(hint: Any, f: dataclasses.Field, raw: Any, source: str, name: str) -> Any:
    meta = f.metadata
    if dataclasses.is_dataclass(hint):
        return _build(hint, raw, source, name + ".")
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(raw, list):
            raise _fail(source, name, f"expected a list, got {raw!r}")
        if dataclasses.is_dataclass(item):
            return tuple(_build(item, r, source, f"{name}[{i}].") for i, r in enumerate(raw))
        return tuple(_scalar(item, meta, r, source, f"{name}[{i}]") for i, r in enumerate(raw))
    if hint is dict or origin is dict:
        if not isinstance(raw, dict):
            raise _fail(source, name, f"expected a table, got {raw!r}")
        return dict(raw)
    return _scalar(hint, meta, raw, source, name)


def _scalar(hint: Any, meta: Any, raw: Any, source: str, name: str) -> Any:
    unit = meta.get("unit")
    if isinstance(hint, types.UnionType):
        hint = typing.get_args(hint)[0]
    if unit == "s":
        value = _seconds(raw, source, name)
    elif unit == "bytes":
        value = _bytes(raw, source, name)
    elif hint is bool:
        if not isinstance(raw, bool):
            raise _fail(source, name, f"expected true or false, got {raw!r}")
        value = raw
    elif hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise _fail(source, name, f"expected a whole number, got {raw!r}")
        value = raw
    elif hint is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise _fail(source, name, f"expected a number, got {raw!r}")
        value = float(raw)
    elif hint is str:
        if not isinstance(raw, str):
            raise _fail(source, name, f"expected a string, got {raw!r}")
        value = raw
    else:  # pragma: no cover - a model field of a type this parser does not know
        raise TypeError(f"unsupported recipe field type {hint} for {name}")
    if "choices" in meta and value not in meta["choices"]:
        raise _fail(
            source, name, f"{value!r} is not allowed" + _did_you_mean(value, meta["choices"])
        )
    low, high = meta.get("min"), meta.get("max")
    if low is not None and value < low:
        raise _fail(source, name, f"{raw!r} is too small (at least {_show(low, unit)})")
    if high is not None and value > high:
        raise _fail(source, name, f"{raw!r} is too large (at most {_show(high, unit)})")
    return value


def _did_you_mean(value: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    close = get_close_matches(str(value), allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; allowed: {', '.join(allowed)}"


def _show(value: float, unit: str | None) -> str:
    if unit == "s":
        return f"{value:g}s"
    if unit == "bytes":
        return f"{value:g} bytes"
    return f"{value:g}"


def _seconds(raw: Any, source: str, name: str) -> float:
    value = durations.seconds(raw)
    if value is None:
        raise _fail(source, name, durations.not_a_duration(raw))
    return value


def _bytes(raw: Any, source: str, name: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgG]i?[bB]|[bB])\s*", str(raw))
    if not match:
        raise _fail(source, name, f"{raw!r} is not a size; write e.g. 100, 1KiB, 4MB")
    return int(float(match.group(1)) * _UNITS_BYTES[match.group(2).lower()])


def _check_whole(recipe: Recipe, source: str) -> Recipe:
    """Rules that span fields; the recipe with its faults' arguments in seconds."""
    for i, broker in enumerate(recipe.brokers):
        if broker not in registry.names():
            error = unknown_choice("broker", broker, registry.names())
            raise _fail(source, f"brokers[{i}]", str(error))
    if recipe.pattern not in PATTERNS:  # pragma: no cover - caught by choices
        raise _fail(source, "pattern", recipe.pattern)
    rate = recipe.rate
    if rate.profile == "ramp" and rate.to <= 0:
        raise _fail(source, "rate.to", "a ramp needs the rate it ends at (to > 0)")
    if rate.profile == "spike":
        if rate.peak <= 0 or rate.length <= 0:
            raise _fail(source, "rate.peak", "a spike needs peak > 0 and length > 0")
        if rate.start >= recipe.duration:
            raise _fail(source, "rate.start", f"{rate.start:g}s is after the run ends")
    if rate.profile == "curve" and (not rate.curve or sum(rate.curve) <= 0):
        raise _fail(source, "rate.curve", "a curve needs a list of relative rates, e.g. [4, 1, 1]")
    size = recipe.message
    if size.distribution == "uniform" and size.min > size.max:
        raise _fail(source, "message.min", f"{size.min} is larger than message.max ({size.max})")
    if recipe.warmup >= recipe.duration:
        raise _fail(
            source, "warmup", f"{recipe.warmup:g}s leaves nothing of a {recipe.duration:g}s run"
        )
    faults = tuple(
        _check_fault(f, source, f"faults[{i}]", recipe) for i, f in enumerate(recipe.faults)
    )
    _check_subscribers(recipe, source)
    _check_requests(recipe, source)
    from lab.stream.check import problem  # the stream package owns its rules

    found = problem(recipe.stream)
    if found:
        raise _fail(source, *found)
    return dataclasses.replace(recipe, faults=faults)


def _check_subscribers(recipe: Recipe, source: str) -> None:
    subs = recipe.subscribers
    if recipe.pattern != "pub-sub":
        if subs != type(subs)():
            raise _fail(source, "subscribers", 'subscriptions need pattern = "pub-sub"')
        return
    if subs.slow > subs.count:
        raise _fail(source, "subscribers.slow", f"{subs.slow} of {subs.count} subscribers")
    r = recipe.retention
    if r.max_age or r.max_messages or r.max_bytes:
        raise _fail(source, "retention", "retention limits with pub-sub are not built yet")
    if recipe.poison_share:
        # Some brokers retry by republishing to the topic, which every subscriber reads.
        raise _fail(source, "poison_share", "poison messages with pub-sub are not built yet")


def _check_requests(recipe: Recipe, source: str) -> None:
    if not recipe.request_reply:
        if recipe.requests != type(recipe.requests)():
            raise _fail(source, "requests", 'requests need pattern = "request-reply"')
        return
    r = recipe.retention
    if r.max_age or r.max_messages or r.max_bytes:
        raise _fail(source, "retention", "retention limits with request-reply are not built yet")
    if recipe.poison_share:
        raise _fail(source, "poison_share", "poison requests are not built yet")


def _check_fault(fault: Fault, source: str, name: str, recipe: Recipe) -> Fault:
    """The fault as the run will inject it (durations such as `for = "5s"` in seconds), or
    why it can never happen: on a broker not in the run, or after the run ends."""
    from lab.faults import ACTIONS, broker_problem, schedule_problem
    from lab.faults import Fault as Injectable  # the faults package owns the actions

    try:
        injectable = Injectable(fault.action, fault.broker or None, fault.args)
    except LabError as exc:
        field = "action" if fault.action not in ACTIONS else "args"
        raise _fail(source, f"{name}.{field}", str(exc)) from None
    if fault.broker and fault.broker not in registry.names():
        error = unknown_choice("broker", fault.broker, registry.names())
        raise _fail(source, f"{name}.broker", str(error))
    problem = broker_problem(injectable, recipe.brokers)
    if problem:
        raise _fail(source, f"{name}.broker", problem)
    problem = schedule_problem(fault.at, injectable, recipe.duration)
    if problem:
        raise _fail(source, f"{name}.at", problem)
    return dataclasses.replace(fault, args=dict(injectable.args))
