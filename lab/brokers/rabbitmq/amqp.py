"""One pika connection and channel whose I/O runs only when the caller pumps it.

Every RabbitMQ client of the lab (producer, consumer, the engine's admin channel) is a
SelectConnection whose I/O loop runs only inside `Session.pump`, driven by the caller: no
background thread, and nothing waits unless the caller asked to. That lets a producer
keep a window of publisher confirms in flight; a BlockingChannel in confirm mode waits
for each confirm and tops out near 1.5k msgs/s on the lab's machine.
"""

import logging
import time
from collections.abc import Callable

import pika
from pika import frame
from pika.adapters.select_connection import IOLoop, SelectConnection
from pika.channel import Channel
from pika.exceptions import AMQPError

from lab.brokers.contract import BrokerError
from lab.endpoints import Endpoint

# pika logs a lost or refused connection at ERROR; the adapter raises BrokerError instead,
# and the workers decide what is worth saying.
logging.getLogger("pika").setLevel(logging.CRITICAL)

CONNECT_TIMEOUT = 10.0
SETUP_TIMEOUT = 30.0  # declaring a quorum queue waits for its Raft group to form
PROBE_TIMEOUT = 2.0  # a probe runs twice a second: a stalled broker must not hold the engine
CLOSE_TIMEOUT = 5.0


def _never() -> bool:
    return False


def _nothing() -> None:
    pass


def connection_parameters(ep: Endpoint, timeout: float) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=ep.host,
        port=ep.port,
        virtual_host=ep.path or "/",
        credentials=pika.PlainCredentials(ep.username or "guest", ep.password or ""),
        connection_attempts=1,
        socket_timeout=timeout,
        stack_timeout=timeout,
        blocked_connection_timeout=timeout,
    )


class Session:
    """One connection and one channel, whose I/O runs only while pump() runs."""

    def __init__(self, ep: Endpoint, timeout: float = CONNECT_TIMEOUT) -> None:
        self.error: str | None = None
        self._closing = False
        self._where = f"RabbitMQ at {ep.host}:{ep.port}"
        params = connection_parameters(ep, timeout)
        self._loop = IOLoop()
        self._loop.activate_poller()
        opened: list = []
        try:
            self._conn = SelectConnection(
                params,
                on_open_callback=opened.append,
                on_open_error_callback=self._on_open_failed,
                on_close_callback=self._on_lost,
                custom_ioloop=self._loop,
            )
            self._await(opened, "connect", timeout)
            self._conn.channel(on_open_callback=opened.append)
            self._await(opened, "open a channel", timeout)
        except ValueError as exc:
            # pika raises it for a connection that the broker dropped as it was made (a
            # broker being killed or restarted): that is the broker's doing, not a bug.
            self.close()
            raise BrokerError(f"cannot connect to {self._where}: {exc}") from exc
        except BaseException:
            self.close()
            raise
        self.channel: Channel = opened[1]
        self.channel.add_on_close_callback(self._on_channel_closed)

    def _on_open_failed(self, _conn: object, exc: BaseException) -> None:
        self.error = f"cannot connect to {self._where}: {exc!r}"

    def _on_lost(self, _conn: object, exc: BaseException) -> None:
        if not self._closing:
            self.error = f"{self._where}: connection lost: {exc!r}"

    def _on_channel_closed(self, _channel: Channel, exc: BaseException) -> None:
        if not self._closing:
            self.error = f"{self._where}: channel closed: {exc!r}"

    def pump(self, timeout: float | None, until: Callable[[], bool] = _never) -> None:
        """Run the I/O loop until `until()` holds or `timeout` seconds pass (None: no limit;
        0: one pass that sends what is buffered and takes what has arrived)."""
        if self.error:
            raise BrokerError(self.error)
        loop = self._loop
        if until():
            timeout = 0
        deadline = timer = None
        if timeout is not None:
            deadline = time.monotonic() + timeout
            timer = loop.call_later(timeout, _nothing)  # caps how long one poll may block
        try:
            while True:
                loop.poll()
                loop.process_timeouts()
                if self.error:
                    raise BrokerError(self.error)
                if until() or (deadline is not None and time.monotonic() >= deadline):
                    return
        finally:
            if timer is not None:
                loop.remove_timeout(timer)

    def _await(self, box: list, what: str, timeout: float) -> None:
        want = len(box) + 1
        self.pump(timeout, lambda: len(box) >= want)
        if len(box) < want:
            raise BrokerError(f"{self._where}: no answer within {timeout:g}s to {what}")

    def call(
        self, timeout: float, method: Callable[..., object], *args: object, **kw: object
    ) -> frame.Method:
        """An AMQP method that answers through `callback`: wait for the answer, return it."""
        box: list = []
        try:
            method(*args, callback=box.append, **kw)
        except AMQPError as exc:  # the channel or connection closed since the last pump
            raise BrokerError(self.error or f"{self._where}: {exc!r}") from exc
        self._await(box, method.__name__, timeout)
        return box[0]

    def coalesce_output(self) -> None:
        """Join the frames waiting to be written into one buffer. pika writes each frame
        with its own send() call, three per message; one call per batch halves the
        producer's CPU per message. This is pika's private state, so a release that
        renames it only loses the saving."""
        buffers = getattr(getattr(self._conn, "_transport", None), "_tx_buffers", None)
        if buffers is not None and len(buffers) > 1:
            joined = b"".join(buffers)
            buffers.clear()
            buffers.append(joined)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        conn = getattr(self, "_conn", None)  # absent when the constructor failed early
        try:
            if conn is not None and not (conn.is_closed or conn.is_closing):
                conn.close()
            self.error = None
            if conn is not None:
                self.pump(CLOSE_TIMEOUT, lambda: conn.is_closed)
        except (AMQPError, BrokerError):
            pass  # already gone: nothing left to release but the loop
        finally:
            self._loop.close()
            self.error = "the connection was closed"  # any later use raises BrokerError
