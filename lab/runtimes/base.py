"""What every runtime offers: the Runtime protocol and the helpers runtimes share."""

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Protocol

from lab.endpoints import Endpoint
from lab.errors import LabError
from lab.runtimes.model import BrokerStatus, ResourceStats
from lab.settings import Settings

# Called with (broker, message) while brokers start, so a UI can show progress.
Progress = Callable[[str, str], None]


class Runtime(Protocol):
    name: str
    settings: Settings  # the state dir and port block this runtime works in

    def up(self, brokers: Sequence[str], progress: Progress | None = None) -> list[BrokerStatus]:
        """Start the brokers that are not running and wait until each answers its protocol."""

    def down(self, brokers: Sequence[str]) -> None:
        """Stop the brokers gracefully (then forcibly), leaving no process behind."""

    def status(self, brokers: Sequence[str], sample_seconds: float = 0.5) -> list[BrokerStatus]:
        """State, endpoint, pid, CPU, RSS and version of each broker."""

    def health(self, broker: str) -> bool:
        """True when the broker answers a real client call."""

    def kill(self, broker: str) -> None:
        """SIGKILL: the broker gets no chance to flush or say goodbye."""

    def pause(self, broker: str) -> None:
        """SIGSTOP: the broker freezes, its connections stay open and hang."""

    def resume(self, broker: str) -> None:
        """SIGCONT after pause."""

    def restart(self, broker: str, progress: Progress | None = None) -> BrokerStatus:
        """Graceful stop (if running), then up."""

    def stats(self, broker: str) -> ResourceStats | None:
        """CPU % since the previous call and RSS, of all the broker's processes."""

    def logs(self, broker: str, lines: int = 100) -> str:
        """The last lines of the broker's log."""

    def endpoint(self, broker: str) -> Endpoint:
        """Where clients reach the broker, with credentials."""

    def proxy_route(self, broker: str) -> tuple[int, str, int] | None:
        """(listen port, upstream host, upstream port) for the broker's chaos proxy (listen
        port 0: any), or None when the broker cannot be reached through one."""


# Starts one broker: (name, cancel, started). It appends the name to `started` once it
# has created something that must be removed if the user interrupts, and gives up when
# `cancel` is set.
StartOne = Callable[[str, threading.Event, list[str]], None]


def start_in_parallel(
    names: Sequence[str], start_one: StartOne, on_interrupt: Callable[[list[str]], None]
) -> None:
    """Start the brokers at once, each in its own thread. Ctrl-C cancels them all and hands
    what was started, if anything, to `on_interrupt` before it goes on; failures become
    one LabError."""
    cancel = threading.Event()
    started: list[str] = []
    pool = ThreadPoolExecutor(len(names), thread_name_prefix="lab-up")
    futures = [pool.submit(start_one, n, cancel, started) for n in names]
    try:
        pending = set(futures)
        while pending:  # short waits, so Ctrl-C reaches the main thread at once
            _, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
    except KeyboardInterrupt:
        cancel.set()
        wait(futures)
        pool.shutdown()
        if started:
            on_interrupt(started)
        raise
    pool.shutdown()
    errors = [str(f.exception()) for f in futures if f.exception()]
    if errors:
        raise LabError("; ".join(errors))
