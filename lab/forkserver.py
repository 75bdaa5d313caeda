"""The multiprocessing context for every child the lab forks (workers, the proxy host).

A forkserver that has already imported the client libraries: clean (no threads of the UI
or of librdkafka are inherited, unlike a plain fork) and fast (no interpreter start per
child, unlike spawn).
"""

import functools
import multiprocessing
import multiprocessing.context

from lab import brokers as registry


@functools.cache
def context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    # Each broker names the client libraries its workers use.
    ctx.set_forkserver_preload(["lab.engine.worker", "hdrh.histogram", *registry.preload_modules()])
    return ctx


def prestart() -> None:
    """Start the forkserver (and multiprocessing's resource tracker) now. A UI that swaps
    sys.stderr for an object without a file descriptor (Textual does) must call this
    before: both pass stderr's descriptor on to their children."""
    from multiprocessing import forkserver

    context()
    forkserver.ensure_running()
