"""The brokers the lab knows: one package each, one registry everything else iterates.

Built in: every subpackage of lab/brokers that exports PLUGIN (lab/brokers/plugin.py).
Others come from installed packages, through the entry-point group below, the way
Harlequin finds its database adapters:

    [project.entry-points."broker_lab.brokers"]
    nats = "lab_nats:PLUGIN"
"""

import functools
import pkgutil
import re
from collections.abc import Sequence
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from lab.brokers.plugin import BrokerPlugin
from lab.errors import LabError, unknown_choice

if TYPE_CHECKING:
    from lab.brokers.contract import BrokerAdapter, RunSpec
    from lab.endpoints import Endpoint

ENTRY_POINTS = "broker_lab.brokers"
_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


@functools.cache
def plugins() -> dict[str, BrokerPlugin]:
    """Every broker, in display order. Found once per process."""
    found: list[tuple[str, BrokerPlugin]] = []
    for module in pkgutil.iter_modules(__path__):
        if module.ispkg:
            plugin = getattr(import_module(f"{__name__}.{module.name}"), "PLUGIN", None)
            if plugin is not None:
                found.append((f"lab/brokers/{module.name}", plugin))
    for ep in entry_points(group=ENTRY_POINTS):
        try:
            loaded = ep.load()
        except Exception as exc:  # someone else's package: name it, whatever went wrong
            raise LabError(
                f"the broker plugin '{ep.name}' ({ep.value}) does not load: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        found.append((f"entry point {ep.value}", loaded() if isinstance(loaded, type) else loaded))
    _check(found)
    ordered = sorted((p for _, p in found), key=lambda p: (p.order, p.name))
    return {p.name: p for p in ordered}


def _check(found: list[tuple[str, BrokerPlugin]]) -> None:
    """Names and ports must not collide: each broker gets its own part of the port block."""
    names: dict[str, str] = {}
    ports: dict[object, str] = {}
    for where, plugin in found:
        if not isinstance(plugin, BrokerPlugin):
            raise LabError(f"{where}: PLUGIN is not a BrokerPlugin")
        if not _NAME.fullmatch(plugin.name):
            raise LabError(f"{where}: '{plugin.name}' is not a broker name (a-z, 0-9, -)")
        if plugin.name in names:
            raise LabError(f"{where} and {names[plugin.name]} both define '{plugin.name}'")
        names[plugin.name] = where
        for port, offset in plugin.ports.items():
            for key in (port, offset):
                if key in ports:
                    raise LabError(f"{where}: port {key} is already {ports[key]}'s")
                ports[key] = plugin.name


def names() -> tuple[str, ...]:
    return tuple(plugins())


def default_names() -> tuple[str, ...]:
    """The brokers of a run, or of `lab up`, that names none."""
    return tuple(name for name, p in plugins().items() if p.default)


def get(name: str) -> BrokerPlugin:
    found = plugins().get(name)
    if found is None:
        raise unknown_choice("broker", name, names())
    return found


def check(given: Sequence[str], default: Sequence[str] | None = None) -> list[str]:
    """The given broker names, validated and without repeats; `default` (all brokers,
    unless said otherwise) when none are given."""
    for name in given:
        get(name)
    if given:
        return list(dict.fromkeys(given))
    return list(names() if default is None else default)


def port_offsets() -> dict[str, int]:
    """Every port name of every broker -> its offset in the lab's port block."""
    return {port: off for p in plugins().values() for port, off in p.ports.items()}


def adapter_for(spec: "RunSpec") -> "BrokerAdapter":
    return get(spec.broker).adapter(spec)


def probe(ep: "Endpoint", timeout: float = 2.0) -> str | None:
    """The broker's version if it answers a real client call within `timeout`; raises otherwise."""
    return get(ep.broker).probe(ep, timeout)


def preload_modules() -> list[str]:
    return [m for p in plugins().values() for m in p.preload]
