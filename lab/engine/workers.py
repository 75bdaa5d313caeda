"""Starting and stopping worker processes, and the pipes the engine talks to them through.
Workers come from the lab's forkserver (lab/forkserver.py)."""

import contextlib
import multiprocessing
import multiprocessing.connection
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from lab.engine import control
from lab.engine.reporting import WorkerSpec
from lab.engine.worker import worker_main
from lab.forkserver import context


@dataclass(eq=False)
class WorkerHandle:
    spec: WorkerSpec
    process: multiprocessing.process.BaseProcess
    control: Connection  # engine -> worker
    out: Connection  # worker -> engine
    stopping: bool = False
    finished: bool = False  # its final report arrived
    reported: bool = False  # it has said something: its client is connected
    ready: bool = False  # producers: connected and waiting for the start time
    eof: bool = False  # its pipe closed: the process has ended
    assigned: tuple[int, ...] | None = None  # consumers: partitions the engine gave it
    received: int = 0  # consumers: messages received so far
    started_at: float = field(default_factory=time.monotonic)

    @property
    def role(self) -> str:
        return self.spec.role

    @property
    def index(self) -> int:
        return self.spec.index

    def tell(self, command: control.Command) -> None:
        with contextlib.suppress(OSError):
            self.control.send(command)

    def stop(self) -> None:
        self.stopping = True
        self.tell(control.Stop())

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to ack, commit or report."""
        if self.process.is_alive():
            self.process.kill()

    def alive(self) -> bool:
        return self.process.is_alive()


def start_worker(spec: WorkerSpec) -> WorkerHandle:
    ctx = context()
    control_recv, control_send = ctx.Pipe(duplex=False)
    out_recv, out_send = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=worker_main,
        args=(spec, control_recv, out_send),
        name=f"lab-{spec.run.broker}-{spec.role}-{spec.index}",
        daemon=True,
    )
    process.start()
    # The worker holds its own ends now; closing ours lets each side see EOF when the
    # other goes away.
    control_recv.close()
    out_send.close()
    return WorkerHandle(spec, process, control_send, out_recv)


def reap(handles: list[WorkerHandle], timeout: float) -> None:
    """Wait for workers to exit; SIGKILL the ones that do not within `timeout`."""
    deadline = time.monotonic() + timeout
    for handle in handles:
        handle.process.join(max(0.0, deadline - time.monotonic()))
        if handle.process.is_alive():
            handle.process.kill()
            handle.process.join(5)
        # `out` belongs to the engine's reader, which closes it when it reads EOF.
        handle.control.close()
