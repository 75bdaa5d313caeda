"""The session's reader thread: folds what every worker sends into its broker's run.

Workers report over pipes; one thread waits on all of them at once and hands each
message to the BrokerRun it belongs to, under the session's lock."""

import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait as wait_connections

from lab.engine.broker_run import BrokerRun


def read_workers(
    runs: list[BrokerRun],
    lock: threading.Lock,
    done: threading.Event,
    say: Callable[[str, str, str | None], None],
) -> None:
    """Until `done`: every message of every worker of `runs` (workers come and go)."""
    owners = {}
    while not done.is_set():
        with lock:
            for run in runs:
                for w in run.workers:
                    if w.out not in owners and not w.eof:
                        owners[w.out] = (run, w)
        if not owners:
            time.sleep(0.05)
            continue
        for conn in wait_connections(list(owners), timeout=0.1):
            run, worker = owners[conn]
            try:
                kind, body = conn.recv()
            except (EOFError, OSError):
                worker.eof = True
                del owners[conn]
                conn.close()
                continue
            with lock:
                worker.reported = True
                problem = run.on_message(worker, kind, body)
            if problem:
                say("error", problem, run.broker)
