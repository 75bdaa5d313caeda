"""The Start screen's recipe editor (Pilot): change the knobs, use or save the recipe, and a
broker that cannot run the pattern says so before anything starts."""

import pytest
from textual.widgets import Input, OptionList, Select, Static

from lab import brokers as registry
from lab.errors import LabError
from lab.recipes import load, parse
from tests.tui.support import fixed_recipes, fixed_statuses, pilot_test, until
from tui import make_app
from tui.screens.edit_recipe import EditRecipeScreen, edited, knobs
from tui.screens.start import StartScreen

FAN_OUT = parse(
    {
        "name": "fan-out",
        "pattern": "pub-sub",
        "subscribers": {"count": 3, "slow": 1, "slow_processing_time": "5ms"},
    }
)


def test_the_knobs_change_the_recipe_and_keep_the_rest():
    values = knobs(FAN_OUT) | {"rate.rate": "250", "subscribers.count": "4", "duration": "9"}
    recipe = edited(FAN_OUT, values)
    assert recipe.name == "fan-out-edited"
    assert (recipe.rate.rate, recipe.subscribers.count, recipe.duration) == (250, 4, 9)
    assert recipe.subscribers.slow == 1  # what the editor does not show is kept
    assert recipe.description.startswith("Changed on the Start screen from fan-out")


def test_another_pattern_drops_the_sections_of_the_old_one():
    recipe = edited(FAN_OUT, knobs(FAN_OUT) | {"pattern": "work-queue"})
    assert recipe.pattern == "work-queue"
    assert recipe.subscribers == type(recipe.subscribers)()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rate.rate", "lots", "rate (msgs/s): expected a number, got 'lots'"),
        ("consumers.count", "-1", "consumers: -1 is too small"),
        ("message.size", "1XB", "message size: "),
        ("name", "../x", "name: letters, digits"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_field(field, value, message):
    with pytest.raises(LabError) as err:
        edited(FAN_OUT, knobs(FAN_OUT) | {field: value})
    assert str(err.value).startswith(message) and "\n" not in str(err.value), err.value


def start_app(tmp_path):
    return make_app(
        broker_status=fixed_statuses,
        recipe_list=fixed_recipes(),
        results_dir=tmp_path,
        cursor_blink=False,
        poll_status=False,
    )


@pilot_test
async def test_edit_save_and_the_list_shows_the_new_recipe(tmp_path):
    app = start_app(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        start = app.screen
        await until(pilot, lambda: start.statuses, 10, "broker states")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditRecipeScreen))
        editor = app.screen
        editor.query_one("#pattern", Select).value = "pub-sub"
        editor.query_one("#subscribers-count", Input).value = "3"
        editor.query_one("#rate-rate", Input).value = "250"
        await pilot.pause()
        assert str(editor.query_one("#problem", Static).render()) == ""
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, StartScreen))
        path = tmp_path / "quickstart-edited.toml"
        saved = load(str(path))
        assert (saved.pattern, saved.subscribers.count, saved.rate.rate) == ("pub-sub", 3, 250)
        assert start.recipe == saved
        box = start.query_one("#recipes", OptionList)
        assert box.get_option_at_index(box.highlighted).prompt == "quickstart-edited"
        fit = str(start.query_one("#fit", Static).render())
        assert fit.startswith("✓ pub-sub on ") and "redis" in fit, fit


@pilot_test
async def test_escape_leaves_the_recipe_as_it_was(tmp_path):
    app = start_app(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        start = app.screen
        await until(pilot, lambda: start.statuses, 10, "broker states")
        before = start.recipe
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditRecipeScreen))
        app.screen.query_one("#rate-rate", Input).value = "1"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, StartScreen))
        assert start.recipe is before and len(start.recipe_list) == len(fixed_recipes())
        assert not list(tmp_path.glob("*.toml"))


@pilot_test
async def test_a_broker_that_cannot_run_the_pattern_says_why_before_anything_starts(
    tmp_path, monkeypatch
):
    plugin = registry.get("postgres")
    monkeypatch.setattr(type(plugin), "patterns", ("work-queue",))
    app = start_app(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        start = app.screen
        await until(pilot, lambda: start.statuses, 10, "broker states")
        start._add_recipe(parse({"name": "fan", "pattern": "pub-sub"}))
        await pilot.pause()
        why = plugin.cannot("pub-sub")
        assert f"✗ {why}" in str(start.query_one("#fit", Static).render())
        await pilot.press("s")
        await pilot.pause()
        assert [n.message for n in app._notifications] == [why]
        assert isinstance(app.screen, StartScreen) and not start.busy


@pilot_test
async def test_a_fault_on_a_broker_not_ticked_is_refused_before_anything_starts(tmp_path):
    app = start_app(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        start = app.screen
        await until(pilot, lambda: start.statuses, 10, "broker states")
        faults = [{"at": "2s", "action": "kill", "broker": "kafka"}]
        start._add_recipe(parse({"name": "crash", "faults": faults}))
        start.set_ticks({"redis"})
        await pilot.press("s")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert said == ["crash: faults[0].broker: kafka is not in this run (redis)"], said
        assert isinstance(app.screen, StartScreen) and not start.busy
