"""`lab run`: a recipe through the brokers without a screen, a live table, JSON results."""

import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.live import Live

from lab import recipes
from lab.cli.live import live_view, plain_line, print_summary
from lab.engine.session import Session
from lab.errors import LabError
from lab.faults import Fault, planned_problem, schedule_problem
from lab.runtimes import Runtime

PLAIN_EVERY = 5.0  # seconds between progress lines when the output is not a terminal


def run(
    runtime: Runtime,
    recipe_name: str,
    brokers: list[str],
    mode: str,
    out_dir: Path,
    overrides: dict,
    keep_brokers: bool,
    faults: list[tuple[str, float, Fault]],
) -> int:
    """`faults`: (as written, seconds, fault) of each --fault."""
    recipe = recipes.load(recipe_name, overrides)
    names = brokers or list(recipe.brokers)
    problem = planned_problem(recipe.faults, names)
    if problem:  # the file had it in its own brokers: --brokers left it out
        raise LabError(f"--brokers {','.join(brokers)}: with it, {problem}")
    for text, at, fault in faults:
        problem = schedule_problem(at, fault, recipe.duration, names)
        if problem:
            raise LabError(f"--fault {text!r}: {problem}")
    console = Console(stderr=False)
    session = Session(runtime, stop_started_brokers=not keep_brokers)
    interrupted = []

    def on_sigint(_sig: int, _frame: object) -> None:
        if interrupted:
            raise KeyboardInterrupt
        interrupted.append(True)
        console.print("[yellow]stopping: producers stop, consumers drain (Ctrl-C again to abort)")
        session.stop(timeout=0)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        session.start(recipe, brokers, mode, [(at, fault) for _, at, fault in faults])
        if console.is_terminal:
            with Live(console=console, refresh_per_second=4, transient=False) as live:
                for snap in session.snapshots():
                    live.update(live_view(snap))
                    for event in snap.events:
                        live.console.print(f"[dim]{event.t:6.1f}s[/] {_who(event)}{event.message}")
        else:
            last = -PLAIN_EVERY
            for snap in session.snapshots():
                for event in snap.events:
                    print(f"{event.t:6.1f}s {_who(event)}{event.message}", flush=True)
                if snap.t - last >= PLAIN_EVERY or snap.done:
                    print(plain_line(snap), flush=True)
                    last = snap.t
        result = session.wait()
    except KeyboardInterrupt:
        console.print("[red]aborted: workers killed, the run's queues removed")
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
        session.close()
    path = result.write(out_dir)
    print_summary(console, result, path)
    sys.stdout.flush()
    return 0


def _who(event: object) -> str:
    return f"{event.broker}: " if event.broker else ""
