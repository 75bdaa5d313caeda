"""What every benchmark needs: brokers of its own, and CPU time of processes."""

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

from lab.runtimes.native import NativeRuntime
from lab.settings import Settings


@contextmanager
def isolated_runtime(port_base: int, brokers: Sequence[str] = ()) -> Iterator[NativeRuntime]:
    """A native runtime in a state dir of its own (brokers started if given); everything
    is stopped and removed afterwards."""
    state = Path(tempfile.mkdtemp(prefix="broker-lab-bench-", dir="/tmp"))
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
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def lab_processes() -> list[psutil.Process]:
    """This process and everything it started: forkserver, workers, the proxy host."""
    me = psutil.Process()
    return [me, *me.children(recursive=True)]
