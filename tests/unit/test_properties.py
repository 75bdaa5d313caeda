"""Property-based tests (Hypothesis): whatever a user or an editor does to a recipe, a fault
or a results file, the lab answers with a valid object or one clear LabError, never another
exception, and a results file that loads can be replayed, summarised and reported."""

import copy
import json
import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.errors import LabError
from lab.export.markdown import to_markdown
from lab.faults import parse_fault
from lab.recipes import Recipe, parse
from lab.recipes.parse import RECIPES_DIR
from lab.report.data import run_data
from lab.results import RunResult
from tests.helpers import DATA
from tui.feed import snapshots_from_result, whole_run

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
RECIPES = [tomllib.loads(p.read_text()) for p in sorted(RECIPES_DIR.glob("*.toml"))]
RESULTS = json.loads((DATA / "replay-quickstart.json").read_text())


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document: keys of objects, indexes of lists."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:3]):  # a few: series have hundreds of points
            found += paths(item, (*prefix, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, document: object) -> object:
    """The document with a few places replaced by anything, removed, or added to."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        places = paths(doc)
        if not places:
            break
        *parents, leaf = draw(st.sampled_from(places))
        holder = doc
        for key in parents:
            holder = holder[key]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace" or isinstance(holder, list):
            holder[leaf] = draw(JSON)
        elif action == "remove":
            del holder[leaf]
        elif isinstance(holder, dict):
            holder[draw(st.text(max_size=8))] = draw(JSON)
    return doc


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(RECIPES).flatmap(mutated))
def test_any_mutated_recipe_is_a_recipe_or_one_error(data):
    try:
        recipe = parse(data, "mutated.toml")
    except LabError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(recipe, Recipe)
    assert parse(recipe.to_dict(), "again") == recipe  # what parses, round-trips


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=40)
    | st.builds(
        lambda at, action, rest: f"{at} {action} {rest}",
        st.sampled_from(["10s", "1.5m", "500ms", "3", "-1s", "x", "1e3s"]),
        st.sampled_from(["kill", "latency", "peak", "burst", "nope", ""]),
        st.text(max_size=20),
    )
)
def test_any_fault_text_is_a_fault_or_one_error(text):
    try:
        at, fault = parse_fault(text)
    except LabError as exc:
        assert "\n" not in str(exc)
        return
    assert at >= 0 and fault.describe()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(RESULTS))
def test_any_mutated_results_file_loads_and_replays_or_is_one_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("results") / "run.json"
    path.write_text(json.dumps(data))
    try:
        result = RunResult.load(path)
    except LabError as exc:
        assert "\n" not in str(exc)
        return
    snaps = snapshots_from_result(result)
    if snaps:
        whole_run(result, snaps[-1])
    to_markdown(result)
    run_data(result, "A")
