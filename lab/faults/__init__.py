"""Faults: one set of actions for the Session API, the CLI (--fault) and recipe schedules.

    session.command(Fault("kill", "kafka"))
    lab run quickstart --fault "10s kill kafka" --fault "20s restart kafka"
    [[faults]]  at = "10s"  action = "latency"  broker = "redis"  args = { ms = 200 }

`broker` empty means every broker in the run. Every fault becomes an Event in the
Snapshot stream and the results, so charts can mark it. The actions, what they take and
how they apply: lab/faults/actions.py.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from lab import durations
from lab.errors import LabError, unknown_choice
from lab.faults.actions import ACTIONS, NETWORK_ACTIONS, FaultAction, Scope


@dataclass(frozen=True)
class Fault:
    """A fault to inject now (a Session command). A duration argument (peak's `for`) may
    be text, read like a recipe's durations ('500ms', '5s', '2'); it is seconds after."""

    action: str
    broker: str | None = None
    args: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise unknown_choice("fault action", self.action, ACTIONS)
        kind = ACTIONS[self.action]
        args = {}
        for key, given in self.args.items():
            if key not in kind.params:
                names = ", ".join(kind.params) or "none"
                raise LabError(
                    f"fault '{self.action}' takes no argument '{key}' (it takes: {names})"
                )
            value = given
            if key in kind.durations and isinstance(given, str):
                value = durations.seconds(given)
                if value is None:
                    problem = durations.not_a_duration(given)
                    raise LabError(f"fault '{self.action}': {key}: {problem}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise LabError(f"fault '{self.action}': {key} must be a number, not {value!r}")
            if not math.isfinite(value) or value < 0:
                raise LabError(f"fault '{self.action}': {key} must be 0 or more, not {value:g}")
            args[key] = value
        # Durations given as text ('500ms') are seconds from here on, for the injector
        # and for what results record.
        object.__setattr__(self, "args", args)

    @property
    def kind(self) -> FaultAction:
        return ACTIONS[self.action]

    def arg(self, name: str) -> float:
        return float(self.args.get(name, self.kind.params[name]))

    def describe(self) -> str:
        args = " ".join(f"{k}={v:g}" for k, v in self.args.items())
        return " ".join(x for x in (self.action, self.broker or "all brokers", args) if x)


def schedule_problem(
    at: float, fault: Fault, duration: float, brokers: Sequence[str] | None = None
) -> str | None:
    """Why a fault scheduled at `at` seconds can never happen in a run of `duration` on
    `brokers` (None: any), or None. A recipe file and --fault say it in the same words."""
    if at > duration:
        return f"{at:g}s is after the run ends ({duration:g}s)"
    return broker_problem(fault, brokers)


def broker_problem(fault: Fault, brokers: Sequence[str] | None) -> str | None:
    """Why `fault` can never happen on `brokers` (None: any), or None."""
    if brokers is not None and fault.broker and fault.broker not in brokers:
        return f"{fault.broker} is not in this run ({', '.join(brokers)})"
    return None


def planned_problem(planned: Sequence, brokers: Sequence[str]) -> str | None:
    """Why one of a recipe's scheduled faults (each with .action and .broker) can never
    happen on `brokers`: "faults[i].broker: ...", or None."""
    for i, p in enumerate(planned):
        problem = broker_problem(Fault(p.action, p.broker or None), brokers)
        if problem:
            return f"faults[{i}].broker: {problem}"
    return None


def parse_fault(text: str, brokers: tuple[str, ...] = ()) -> tuple[float, Fault]:
    """'30s kill kafka' or '10s latency redis ms=200 jitter=50' -> (30.0, Fault(...)).
    TIME and duration arguments (peak's `for`) read like a recipe's durations: 90, 1.5m,
    500ms, .5 (seconds)."""
    when, *words = text.split() or [""]
    at = durations.seconds(when) if words else None
    if at is None:
        raise LabError(
            f"fault {text!r} is not 'TIME ACTION [BROKER] [key=value ...]', e.g. '30s kill BROKER'"
        )
    action, *rest = words
    kind = ACTIONS.get(action)
    broker = None
    if rest and "=" not in rest[0]:
        broker = rest.pop(0)
        if brokers and broker not in brokers:
            raise unknown_choice("broker", broker, brokers)
    args: dict[str, float | str] = {}
    for item in rest:
        key, sep, value = item.partition("=")
        if not sep:
            raise LabError(f"fault {text!r}: {item!r} is not key=number")
        if kind is not None and key in kind.durations:
            args[key] = value  # Fault reads it as a duration, and names the argument if not
            continue
        try:
            args[key] = float(value)
        except ValueError:
            raise LabError(f"fault {text!r}: {item!r} is not key=number") from None
    return at, Fault(action, broker, args)


__all__ = [
    "ACTIONS",
    "NETWORK_ACTIONS",
    "Fault",
    "FaultAction",
    "Scope",
    "broker_problem",
    "parse_fault",
    "planned_problem",
    "schedule_problem",
]
