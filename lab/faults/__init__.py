"""Faults: one set of actions for the Session API, the CLI (--fault) and recipe schedules.

    session.command(Fault("kill", "kafka"))
    lab run quickstart --fault "10s kill kafka" --fault "20s restart kafka"
    [[faults]]  at = "10s"  action = "latency"  broker = "redis"  args = { ms = 200 }

`broker` empty means every broker in the run. Every fault becomes an Event in the
Snapshot stream and the results, so charts can mark it. The actions, what they take and
how they apply: lab/faults/actions.py.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lab.errors import LabError, unknown_choice
from lab.faults.actions import ACTIONS, NETWORK_ACTIONS, FaultAction, Scope


@dataclass(frozen=True)
class Fault:
    """A fault to inject now (a Session command)."""

    action: str
    broker: str | None = None
    args: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise unknown_choice("fault action", self.action, ACTIONS)
        allowed = ACTIONS[self.action].params
        for key, value in self.args.items():
            if key not in allowed:
                names = ", ".join(allowed) or "none"
                raise LabError(
                    f"fault '{self.action}' takes no argument '{key}' (it takes: {names})"
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise LabError(f"fault '{self.action}': {key} must be a number, not {value!r}")
            if not math.isfinite(value) or value < 0:
                raise LabError(f"fault '{self.action}': {key} must be 0 or more, not {value:g}")

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
    if brokers is not None and fault.broker and fault.broker not in brokers:
        return f"{fault.broker} is not in this run ({', '.join(brokers)})"
    return None


_SPEC = re.compile(r"^\s*(?P<at>\d+(?:\.\d+)?)(?P<unit>ms|s|m)?\s+(?P<rest>\S.*)$")


def parse_fault(text: str, brokers: tuple[str, ...] = ()) -> tuple[float, Fault]:
    """'30s kill kafka' or '10s latency redis ms=200 jitter=50' -> (30.0, Fault(...))."""
    match = _SPEC.match(text)
    if not match:
        raise LabError(
            f"fault {text!r} is not 'TIME ACTION [BROKER] [key=value ...]', e.g. '30s kill BROKER'"
        )
    at = float(match["at"]) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match["unit"] or "s"]
    action, *rest = match["rest"].split()
    broker = None
    if rest and "=" not in rest[0]:
        broker = rest.pop(0)
        if brokers and broker not in brokers:
            raise unknown_choice("broker", broker, brokers)
    args = {}
    for item in rest:
        key, sep, value = item.partition("=")
        try:
            args[key] = float(value.rstrip("s")) if sep else float("nan")
        except ValueError:
            raise LabError(f"fault {text!r}: {item!r} is not key=number") from None
        if not sep:
            raise LabError(f"fault {text!r}: {item!r} is not key=number")
    return at, Fault(action, broker, args)


__all__ = [
    "ACTIONS",
    "NETWORK_ACTIONS",
    "Fault",
    "FaultAction",
    "Scope",
    "parse_fault",
    "schedule_problem",
]
