"""Producer and consumer worker processes: the only place messages are made, timed and seen.

A worker talks to the engine over two pipes. It reads commands from `control` and
writes to `out`, synchronously (a pipe write survives the worker being SIGKILLed a
moment later, a multiprocessing.Queue's background thread does not):

    ("ready", Report)        producers, once connected; then they wait for
                             control.Start: the run's clock zero
    ("report", Report)       every REPORT_INTERVAL: counts and latency histogram deltas
    ("delivered", bytes)     consumers, per batch, on receipt (before work and ack): the
                             packed (producer << 40 | seq) of each message, so a consumer
                             killed after its ack still has its deliveries counted
    ("dead", bytes)          consumers, likewise, for messages they dead-letter
    ("final", Report)        the last report, then the worker exits

Per message a worker does only what the measurement needs: encode or decode a 25-byte
header, one histogram record, one bitmap bit.
"""

import contextlib
import signal
from multiprocessing.connection import Connection

from lab.engine.consumer import ConsumerWorker
from lab.engine.producer import ProducerWorker
from lab.engine.reporting import EngineGone, WorkerSpec
from lab.engine.requester import RequesterWorker


def worker_main(spec: WorkerSpec, control: Connection, out: Connection) -> None:
    """Entry point of a worker process."""
    # Ctrl-C goes to the whole foreground process group; the engine decides when a
    # worker stops, so that it can drain and report first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if spec.role == "consumer":
            worker = ConsumerWorker
        else:
            worker = RequesterWorker if spec.run.recipe.request_reply else ProducerWorker
        worker(spec, control, out).run()
    except EngineGone:
        return
    except Exception as exc:
        # A bug, not a broker error: tell the engine, which shows it, then fail loudly.
        with contextlib.suppress(OSError):
            out.send(("crashed", f"{spec.role} {spec.index}: {type(exc).__name__}: {exc}"))
        raise
    finally:
        out.close()
