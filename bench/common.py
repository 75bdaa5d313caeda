"""What every benchmark needs: brokers of its own, and CPU time of processes."""

import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

from lab.runtimes.native import NativeRuntime
from lab.runtimes.native.processes import MARK_BROKER
from lab.settings import Settings


def default_port_base() -> int:
    return int(os.environ.get("LAB_PORT_BASE", "33000"))


@contextmanager
def isolated_runtime(port_base: int, brokers: Sequence[str] = ()) -> Iterator[NativeRuntime]:
    """A native runtime in a state dir of its own (brokers started if given); everything
    is stopped and removed afterwards. Under LAB_STATE_DIR when that is set, so that one
    engineer's benchmarks and lab commands share one place to clean up."""
    parent = os.environ.get("LAB_STATE_DIR")
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
        Path(parent).chmod(0o755)
    state = Path(tempfile.mkdtemp(prefix="broker-lab-bench-", dir=parent or "/tmp"))
    state.chmod(0o755)  # PostgreSQL, run as `postgres`, must enter it
    runtime = NativeRuntime(Settings(state, port_base, Settings.from_env().cache_dir))
    try:
        if brokers:
            runtime.up(list(brokers))
        yield runtime
    finally:
        runtime.down([])
        shutil.rmtree(state, ignore_errors=True)


def cpu_seconds(procs: Sequence[psutil.Process]) -> float:
    """user + system CPU time, as /proc/PID/stat has it: unlike a percentage sampled by
    the kernel's scheduler, it does not change when other work shares the cores."""
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def lab_processes() -> list[psutil.Process]:
    """This process and everything it started: forkserver, workers, the proxy host, and
    (native runtime) the brokers, which `group_of` tells apart."""
    me = psutil.Process()
    return [me, *me.children(recursive=True)]


class CpuMeter:
    """CPU time of the lab's processes between the first and the last sample, per group:
    "producer" and "consumer" (the worker processes whose pids `roles` names), each
    broker by name (processes that carry the native runtime's mark), and "engine" (this
    process, the forkserver, the proxy host). Summed over processes alive at both
    samples, in percent of one core."""

    def __init__(self) -> None:
        self.first: dict[tuple[int, float], float] | None = None
        self.last: dict[tuple[int, float], float] = {}
        self.groups: dict[tuple[int, float], str] = {}
        self.span = (0.0, 0.0)
        self.machine: list = []  # psutil.cpu_times() of the whole machine, first and last

    def sample(self, roles: dict[int, str] | None = None) -> None:
        now = {}
        for p in lab_processes():
            try:
                key = (p.pid, p.create_time())
                if key not in self.groups:
                    self.groups[key] = group_of(p, roles or {})
                t = p.cpu_times()
            except psutil.Error:
                continue
            now[key] = t.user + t.system
        self.machine = [*self.machine[:1], psutil.cpu_times()]
        if self.first is None:
            self.first, self.span = now, (time.monotonic(), time.monotonic())
        else:
            self.last, self.span = now, (self.span[0], time.monotonic())

    def percent(self, groups: Iterable[str] | None = None) -> float:
        """Percent of one core used by these groups (None: all but the brokers)."""
        if not self.first or not self.last or self.span[1] <= self.span[0]:
            return 0.0
        wanted = set(groups) if groups is not None else None
        used = sum(
            self.last[key] - self.first[key]
            for key in self.first
            if key in self.last
            and (
                self.groups[key] in wanted
                if wanted is not None
                else self.groups[key] in ("engine", "producer", "consumer")
            )
        )
        return 100 * used / (self.span[1] - self.span[0])

    def steal_percent(self) -> float:
        """The share of the machine's CPU time the hypervisor gave to other guests between
        the samples. On a shared VM it is what makes one run's figures differ from the
        next: a run with steal above a few percent is not a clean measurement."""
        if len(self.machine) < 2:
            return 0.0
        first, last = self.machine
        # Linux counts guest time inside user time already: leave it out of the total.
        total = (
            sum(last) - last.guest - last.guest_nice - (sum(first) - first.guest - first.guest_nice)
        )
        return 100 * (last.steal - first.steal) / total if total > 0 else 0.0


def group_of(proc: psutil.Process, roles: dict[int, str]) -> str:
    """A process's group. Brokers are told by the runtime's mark on the process it
    spawned (a direct child of this one): PostgreSQL backends overwrite their own
    environment with their process titles, so their mark cannot be read."""
    if proc.pid in roles:
        return roles[proc.pid]
    me = psutil.Process().pid
    try:
        top = proc
        while top.ppid() not in (me, 0, 1):
            top = psutil.Process(top.ppid())
        broker = top.environ().get(MARK_BROKER)
    except psutil.Error:
        broker = None
    return broker or "engine"
