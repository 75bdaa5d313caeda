"""Every key of the dashboard, in one place: Textual Bindings with ids.

The ids are what a user's keymap file remaps (`kill = "K"`), what the Footer shows, what
the Help screen and the command palette are generated from. A binding's tooltip is its
longer explanation, so Help never needs hand-written text.
"""

from textual.binding import Binding

from lab.faults import ACTIONS

# Fault keys ask first when their action is destructive (lab/faults/actions.py), unless
# the config says `confirm_destructive = false`.

# First in every screen's list, so the Footer shows them first even at 80 columns.
COMMON = [
    Binding("question_mark", "app.help", "Help", id="help", tooltip="The keys of this screen"),
    Binding("q", "app.quit", "Quit", id="quit", tooltip="Quit; asks first while a run is going"),
]

APP = [
    Binding(
        "ctrl+c",
        "quit_now",
        "Quit now",
        show=False,
        priority=True,
        id="quit-now",
        tooltip="Stop the run, its workers and the brokers the lab started, and quit",
    ),
    Binding(
        "colon",
        "command_palette",
        "Commands",
        show=False,
        id="palette",
        tooltip="Every action of this screen, searchable (ctrl+p too)",
    ),
]

START = [
    *COMMON,
    Binding(
        "space",
        "toggle_broker",
        "Tick",
        id="tick-broker",
        tooltip="Tick or untick the broker under the cursor (enter and a click do too)",
    ),
    Binding("s", "start", "Start", id="start", tooltip="Start the recipe on the ticked brokers"),
    Binding(
        "e",
        "edit_recipe",
        "Edit",
        id="edit-recipe",
        tooltip="Change the recipe's pattern, rate, size, counts, durability or duration; "
        "use it or save it as a new recipe file",
    ),
    Binding(
        "u",
        "bring_up",
        "Up",
        id="brokers-up",
        tooltip="Start the ticked brokers that are not running, and wait until they answer",
    ),
    Binding("f5", "refresh", "Refresh", id="refresh", show=False, tooltip="Ask brokers again"),
    Binding(
        "c",
        "capacity",
        "Capacity",
        id="capacity",
        tooltip="Size servers, a queue or serverless for a day of users; run the day as a recipe",
    ),
]

SELECT_GROUP = Binding.Group("Select broker", compact=True)  # one row in the help
CONSUMERS = Binding.Group("Consumer", compact=True)  # one key in the footer

_SELECT = [
    Binding(
        str(n),
        f"select({n - 1})",
        f"Broker {n}",
        show=False,
        id=f"select-{n}",
        tooltip="Select the broker column of that number",
        group=SELECT_GROUP,
    )
    for n in range(1, 10)
]

# In Footer order: what fits in 80 columns comes first, the rest shows on wider terminals.
RUN = [
    *COMMON,
    *_SELECT,
    Binding("left", "select_step(-1)", "Previous", show=False, id="select-previous"),
    Binding("right", "select_step(1)", "Next", show=False, id="select-next"),
    Binding("k", "fault('kill')", "Kill", id="kill", tooltip=ACTIONS["kill"].summary),
    Binding(
        "p",
        "pause_broker",
        "Pause",
        id="pause-resume",
        tooltip=f"{ACTIONS['pause'].summary}; again: {ACTIONS['resume'].summary}",
    ),
    Binding(
        "r",
        "fault('restart')",
        "Restart",
        id="restart",
        tooltip=ACTIONS["restart"].summary,
    ),
    Binding(
        "l",
        "latency_up",
        "Latency",
        id="latency-up",
        tooltip=f"{ACTIONS['latency'].summary}; again to raise it",
    ),
    Binding(
        "L",
        "latency_clear",
        "No latency",
        show=False,
        id="latency-clear",
        tooltip=ACTIONS["heal"].summary,
    ),
    Binding(
        "n",
        "partition",
        "Split",
        id="partition",
        tooltip=f"{ACTIONS['blackhole'].summary}; again: {ACTIONS['heal'].summary}",
    ),
    Binding(
        "s",
        "peak('peak')",
        "Peak",
        id="peak",
        tooltip="A traffic peak on the selected broker (10x for 10 s unless configured)",
    ),
    Binding(
        "S",
        "peak('big_peak')",
        "Big peak",
        show=False,
        id="big-peak",
        tooltip="A bigger traffic peak on the selected broker (50x for 10 s unless configured)",
    ),
    Binding(
        "d",
        "dead_letters",
        "DLQ",
        id="dead-letters",
        tooltip="Browse and redrive the selected broker's dead letters",
    ),
    Binding(
        "e",
        "export",
        "Export",
        id="export",
        tooltip="Write the run's JSON results, a Markdown summary and the HTML report to the "
        "results directory",
    ),
    Binding(
        "c",
        "fault('crash-consumer')",
        "Crash",
        id="crash-consumer",
        tooltip=ACTIONS["crash-consumer"].summary,
    ),
    Binding(
        "plus",
        "fault('add-consumer')",
        "Consumer",
        id="add-consumer",
        tooltip=ACTIONS["add-consumer"].summary,
        group=CONSUMERS,
    ),
    Binding(
        "minus",
        "fault('remove-consumer')",
        "Consumer",
        id="remove-consumer",
        tooltip=ACTIONS["remove-consumer"].summary,
        group=CONSUMERS,
    ),
    Binding(
        "space",
        "toggle_display",
        "Freeze",
        id="pause-display",
        tooltip="Freeze the display (the run goes on); again to follow it",
    ),
    Binding(
        "escape",
        "back",
        "Back",
        show=False,
        id="back",
        tooltip="Back to the start screen once the run has ended",
    ),
]

DEAD_LETTERS = [
    *COMMON,
    Binding("escape", "dismiss", "Back", id="dlq-back", tooltip="Back to the run"),
    Binding(
        "R",
        "redrive",
        "Redrive",
        id="dlq-redrive",
        tooltip="Send every dead letter of this broker back to its queue",
    ),
    Binding("f5", "reload", "Reload", id="dlq-reload", tooltip="Read the dead letters again"),
]

CAPACITY = [
    *COMMON,
    Binding("escape", "app.pop_screen", "Back", id="capacity-back", tooltip="Back to the start"),
    Binding(
        "ctrl+r",
        "run_recipe",
        "Run recipe",
        id="capacity-run",
        tooltip="Write the day as a time-compressed recipe and run it on the ticked brokers",
    ),
]

EDIT_RECIPE = [
    Binding("escape", "cancel", "Cancel", id="edit-cancel", tooltip="Back, the recipe unchanged"),
    Binding(
        "ctrl+s",
        "save",
        "Save",
        id="edit-save",
        tooltip="Save as a recipe file in the results folder, and use it",
    ),
]

CONFIRM = [
    Binding("y", "answer(True)", "Yes", id="confirm-yes"),
    Binding("n,escape", "answer(False)", "No", id="confirm-no"),
]

HELP = [Binding("escape,question_mark,q", "dismiss", "Close", id="help-close")]

# Scopes in which one key may mean one thing only: each screen's keys plus the app's.
SCOPES = {
    "start": APP + START,
    "run": APP + RUN,
    "dead letters": APP + DEAD_LETTERS,
    "capacity": APP + CAPACITY,
    "edit recipe": EDIT_RECIPE,
    "confirm": CONFIRM,
    "help": HELP,
}


def binding_ids() -> list[str]:
    seen: dict[str, None] = {}
    for bindings in SCOPES.values():
        for binding in bindings:
            if binding.id:
                seen[binding.id] = None
    return list(seen)
