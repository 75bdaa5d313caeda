"""The capacity screen, driven by its keys (Pilot) in a tiny host app: the figures and the
backlog curve follow what is typed, a bad value says what is wrong, ctrl+r hands the
generated recipe to the app. And the whole path in the dashboard, on a real broker: the
Start screen, `c`, ctrl+r, the run of the generated recipe on the ticked broker, its
results with the predicted backlog."""

import pytest
from textual.app import App
from textual.widgets import DataTable, Input, Sparkline, Static

from lab import brokers as registry
from lab.report.data import run_data
from lab.results import RunResult
from tests.tui.support import pilot_test, until
from tui import make_app
from tui.screens.capacity import CapacityScreen
from tui.screens.run import RunScreen
from tui.screens.start import StartScreen


class Host(App[None]):
    """What the dashboard will do: push the screen with a run_recipe hook."""

    def __init__(self, recipe_path, hook=True) -> None:
        super().__init__()
        self.started: list = []
        self.recipe_path = recipe_path
        self.hook = self.started.append if hook else None

    def on_mount(self) -> None:
        self.push_screen(CapacityScreen(run_recipe=self.hook, recipe_path=self.recipe_path))


def figures(app) -> str:
    return str(app.screen.query_one("#figures", Static).render())


async def retype(pilot, field: str, text: str) -> None:
    """Click into a field, clear it with backspaces and type, key by key."""
    widget = pilot.app.screen.query_one(f"#{field}", Input)
    widget.focus()
    await pilot.press("end", *["backspace"] * len(widget.value), *text)
    await pilot.pause()


@pilot_test
async def test_figures_and_curve_follow_the_fields(tmp_path):
    app = Host(tmp_path / "day.toml")
    async with app.run_test(size=(160, 50)) as pilot:
        await until(pilot, lambda: "0.278 req/s" in figures(app), 5, "the first figures")
        curve = app.screen.query_one("#curve", Sparkline)
        assert max(curve.data) == 0  # 1,000 users: one server keeps up all day
        await retype(pilot, "users", "10000")
        assert "2.78 req/s" in figures(app)
        await retype(pilot, "peak-share", "0.55")
        assert "15.3 req/s" in figures(app) and "19,000 waiting" in figures(app)
        assert max(curve.data) > 18_000  # the morning's backlog, drawn
        label = str(app.screen.query_one("#curve-label").render())
        assert "up to 19,000" in label and "36.8 min" in label


@pilot_test
async def test_a_bad_value_says_what_is_wrong_and_keeps_the_figures(tmp_path):
    app = Host(tmp_path / "day.toml")
    async with app.run_test(size=(160, 50)) as pilot:
        await retype(pilot, "hours", "18-8")
        problem = str(app.screen.query_one("#problem", Static).render())
        assert "--hours: '18-8' must run forward" in problem
        assert app.screen.query_one("#hours", Input).has_class("-invalid")
        assert "0.278 req/s" in figures(app)  # the last good figures stay
        await pilot.press("ctrl+r")
        assert not app.started
        await retype(pilot, "hours", "8-18")
        assert not app.screen.query_one("#hours", Input).has_class("-invalid")


@pilot_test
async def test_ctrl_r_hands_the_recipe_to_the_app(tmp_path):
    path = tmp_path / "day.toml"
    app = Host(path)
    async with app.run_test(size=(160, 50)) as pilot:
        await retype(pilot, "users", "10000")
        await retype(pilot, "peak-share", "55%")
        await pilot.press("ctrl+r")
        await pilot.pause()
        [recipe] = app.started
        assert path.exists()
        assert recipe.name == "day" and recipe.rate.profile == "curve"
        assert recipe.duration == 100 and len(recipe.rate.curve) == 10
        assert recipe.consumers.count / recipe.consumers.processing_time == 100


@pilot_test
async def test_without_a_hook_it_writes_the_recipe_and_says_how_to_run_it(tmp_path):
    path = tmp_path / "day.toml"
    app = Host(path, hook=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("ctrl+r")
        await pilot.pause()
        status = str(app.screen.query_one("#status", Static).render())
        assert f"lab run {path}" in status and path.exists()


@pytest.mark.brokers
@pilot_test
async def test_start_screen_c_then_ctrl_r_runs_the_day_on_the_ticked_broker(session_lab, tmp_path):
    session_lab.endpoint("redis")
    out = tmp_path / "results"
    app = make_app(session_lab.runtime, results_dir=out, cursor_blink=False)
    async with app.run_test(size=(160, 50)) as pilot:
        start = app.screen
        assert isinstance(start, StartScreen)
        await until(pilot, lambda: len(start.statuses) == len(registry.names()), 60, "states")
        table = start.query_one("#brokers", DataTable)
        table.focus()
        await pilot.press(*["up"] * len(registry.names()))
        for broker in registry.names():
            if (broker == "redis") != (broker in start.ticked):
                await pilot.press("space")
            await pilot.press("down")
        assert start.ticked == {"redis"}
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CapacityScreen), 10, "the screen")
        await retype(pilot, "users", "10000")
        await retype(pilot, "peak-share", "0.55")
        await retype(pilot, "seconds-per-hour", "1")  # the working day in 10 s
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, RunScreen), 120, "the run to start")
        screen = app.screen
        assert screen.info.brokers == ("redis",)
        assert screen.info.recipe["name"] == "capacity"
        await until(pilot, lambda: screen.ended, 120, "the run to end")
        await until(pilot, lambda: list(out.glob("*.json")), 20, "the results")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 60, "the app to quit")
    assert (out / "capacity.toml").exists()  # the recipe the screen wrote
    [path] = out.glob("*.json")
    result = RunResult.load(path)
    assert list(result.brokers) == ["redis"] and result.recipe["rate"]["profile"] == "curve"
    assert result.brokers["redis"].summary["adds_up"]
    [redis] = run_data(result, "day")["brokers"]
    assert redis["prediction"] is not None  # the report shows predicted and measured backlog
