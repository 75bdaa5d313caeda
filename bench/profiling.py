"""Where a worker's CPU goes: py-spy samples of the worker processes during a trial, sorted
into the parts of a message's life (bench.throughput --profile DIR).

py-spy (pip install py-spy) samples the Python threads only, and by default only while
they run (not while they sleep or wait in a poll); native threads of a client library
(librdkafka's) are not in it, which is why the per-process CPU time is reported next to
it. A frame's category is the first match from the innermost frame outwards.
"""

import shutil
import subprocess
from collections import Counter
from pathlib import Path

RATE = 200  # samples per second

CATEGORIES = [  # (category, substring of a frame "function (file:line)")
    ("histogram", "hdrh"),
    ("histogram", "record_us"),
    ("ledger", "lab/ledger.py"),
    ("pipe reports", "multiprocessing/connection.py"),
    ("pipe reports", "multiprocessing/reduction.py"),
    ("pipe reports", "reporting.py"),
    ("commands", "commands ("),
    ("pacing", "lab/engine/pacing.py"),
    ("encoding", "lab/messages.py"),
    ("stream", "lab/stream/"),
    ("client", "site-packages/"),
    ("client", "lab/brokers/"),
    ("worker loop", "lab/engine/"),
]


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    spy = shutil.which("py-spy")
    if spy is None:
        print("  (no py-spy on PATH: pip install py-spy)")
        return None
    argv = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    argv += ["--rate", str(RATE), "--nonblocking", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def category(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for name, needle in CATEGORIES:
            if needle in frame:
                return name
    return "client"  # library frames py-spy names by module path


def summary(raw: Path, messages: float) -> dict[str, float]:
    """Microseconds of Python-thread CPU per message, per category, from py-spy's raw
    (collapsed stack) output over a window in which `messages` went through."""
    samples: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            samples[category(stack)] += int(n)
    if not messages:
        return {}
    return {k: 1e6 * v / RATE / messages for k, v in samples.most_common()}


def describe(role: str, costs: dict[str, float], process_us: float) -> str:
    """The categories' shares of the Python samples, applied to the process's CPU time
    per message (py-spy's own totals run high on a busy machine; /proc's do not)."""
    total = sum(costs.values())
    if not total:
        return f"{role}: {process_us:.1f} us/msg, no samples"
    parts = ", ".join(
        f"{k} {process_us * v / total:.1f}" for k, v in costs.items() if v / total >= 0.01
    )
    return f"{role}: {process_us:.1f} us/msg of CPU ({parts})"
