"""The dashboard's config file: remapped keys, confirmations, how strong the peaks are.

    # ~/.config/broker-lab/tui.toml  ($XDG_CONFIG_HOME, or the file LAB_TUI_CONFIG names)
    confirm_destructive = true        # kill, restart, partition, crash a consumer ask first
    latency_steps_ms = [50, 100, 200, 500, 1000, 2000]   # `l` steps through these
    [keymap]                          # binding id = key, or several: "K,ctrl+k"
    kill = "K"
    [peaks]
    peak = { x = 10, for = 10 }       # `s`: 10x the rate for 10 s
    big_peak = { x = 50, for = 10 }   # `S`

Every mistake is one LabError naming the file, the setting and what is allowed.
"""

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from textual.keys import _character_to_key

from lab.errors import LabError, unknown_choice
from tui.bindings import SCOPES, binding_ids

DEFAULT_PEAKS = {"peak": {"x": 10.0, "for": 10.0}, "big_peak": {"x": 50.0, "for": 10.0}}
DEFAULT_LATENCY_STEPS = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
SETTINGS = ("confirm_destructive", "latency_steps_ms", "keymap", "peaks")


def default_path() -> Path:
    if explicit := os.environ.get("LAB_TUI_CONFIG"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "broker-lab" / "tui.toml"


@dataclass(frozen=True)
class TuiConfig:
    confirm_destructive: bool = True
    latency_steps_ms: tuple[float, ...] = DEFAULT_LATENCY_STEPS
    keymap: dict[str, str] = field(default_factory=dict)
    peaks: dict[str, dict[str, float]] = field(default_factory=lambda: dict(DEFAULT_PEAKS))

    @classmethod
    def load(cls, path: Path | None = None) -> "TuiConfig":
        """The config at `path` (default: default_path()); defaults when there is none."""
        path = path or default_path()
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise LabError(f"{path}: cannot read the TUI config: {exc}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict, source: str = "<config>") -> "TuiConfig":
        for key in data:
            if key not in SETTINGS:
                raise _err(source, unknown_choice("setting", key, SETTINGS))
        confirm = data.get("confirm_destructive", True)
        if not isinstance(confirm, bool):
            raise LabError(f"{source}: confirm_destructive must be true or false")
        steps = data.get("latency_steps_ms", list(DEFAULT_LATENCY_STEPS))
        if (
            not isinstance(steps, list)
            or not steps
            or not all(isinstance(s, int | float) and s > 0 for s in steps)
        ):
            raise LabError(f"{source}: latency_steps_ms must be a list of milliseconds > 0")
        return cls(
            confirm_destructive=confirm,
            latency_steps_ms=tuple(float(s) for s in steps),
            keymap=_keymap(data.get("keymap", {}), source),
            peaks=_peaks(data.get("peaks", {}), source),
        )


def normalize_keys(keys: str) -> str:
    """'?,K' -> 'question_mark,K': the names Textual matches key presses against."""
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    return ",".join(_character_to_key(k) if len(k) == 1 else k for k in parts)


def _err(source: str, exc: LabError) -> LabError:
    return LabError(f"{source}: {exc}")


def _keymap(raw: object, source: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise LabError(f"{source}: [keymap] must be a table of binding id = key")
    ids = binding_ids()
    keymap = {}
    for binding_id, keys in raw.items():
        if binding_id not in ids:
            raise _err(source, unknown_choice("keymap binding id", binding_id, ids))
        if not isinstance(keys, str) or not keys.strip():
            raise LabError(f'{source}: keymap.{binding_id} must be a key such as "K"')
        keymap[binding_id] = normalize_keys(keys)
    _check_clashes(keymap, source)
    return keymap


def _check_clashes(keymap: dict[str, str], source: str) -> None:
    """Two actions on one key in one screen would silently lose one of them."""
    for scope, bindings in SCOPES.items():
        owner: dict[str, str] = {}
        for binding in bindings:
            keys = keymap.get(binding.id or "", normalize_keys(binding.key))
            for key in keys.split(","):
                other = owner.setdefault(key, binding.id or binding.action)
                if other != (binding.id or binding.action):
                    raise LabError(
                        f"{source}: key '{key}' would mean both '{other}' and "
                        f"'{binding.id}' on the {scope} screen: give one of them another key"
                    )


def _peaks(raw: object, source: str) -> dict[str, dict[str, float]]:
    if not isinstance(raw, dict):
        raise LabError(f"{source}: [peaks] must be a table")
    peaks = {name: dict(spec) for name, spec in DEFAULT_PEAKS.items()}
    for name, spec in raw.items():
        if name not in DEFAULT_PEAKS:
            raise _err(source, unknown_choice("peak", name, DEFAULT_PEAKS))
        if not isinstance(spec, dict) or not set(spec) <= {"x", "for"}:
            raise LabError(f"{source}: peaks.{name} must be {{ x = 10, for = 10 }}")
        for key, value in spec.items():
            if not isinstance(value, int | float) or value <= 0:
                raise LabError(f"{source}: peaks.{name}.{key} must be a number > 0")
            peaks[name][key] = float(value)
    return peaks
