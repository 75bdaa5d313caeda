"""The multiprocessing context for every child the lab forks (workers, the proxy host).

A forkserver that has already imported the client libraries: clean (no threads of the UI
or of librdkafka are inherited, unlike a plain fork) and fast (no interpreter start per
child, unlike spawn).
"""

import functools
import multiprocessing
import multiprocessing.context

_PRELOAD = ["lab.engine.worker", "confluent_kafka", "pika", "redis", "psycopg", "hdrh.histogram"]


@functools.cache
def context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def prestart() -> None:
    """Start the forkserver (and multiprocessing's resource tracker) now. A UI that swaps
    sys.stderr for an object without a file descriptor (Textual does) must call this
    before: both pass stderr's descriptor on to their children."""
    from multiprocessing import forkserver

    context()
    forkserver.ensure_running()
