"""The chaos proxy's connections: each client connection is a Link of two Sides (the
client's socket and the upstream's) and two Flows (up and down), each of which holds
back, delays or rate-limits its bytes as the proxy's toxics say (proxy.py)."""

import asyncio
import contextlib
import socket
import struct
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.faults.proxy import ChaosProxy

# Queued bytes per direction (latency, bandwidth) before the sender is paused: like a
# TCP window, it bounds memory and, under latency, throughput to QUEUE_LIMIT per delay.
QUEUE_LIMIT = 4 * 1024 * 1024
# A capped write is at most this many seconds of traffic: small, so a cap holds over short
# spans too, but never below one Ethernet frame, so a slow cap still sends whole packets.
BURST_SECONDS = 0.02
MIN_BURST = 1500
# Reasons a direction stops reading from its source; it reads again when none is left.
_CONNECTING, BLACKHOLE, _FULL, _WRITE = "connecting", "blackhole", "full", "write"
_EOF = object()  # marks the source's FIN in a direction's queue, after its last data
_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


class Side(asyncio.Protocol):
    """One socket of a proxied connection: the client's or the upstream's."""

    __slots__ = ("into", "link", "out", "transport")

    def __init__(self, link: "Link") -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.out: Flow  # what this side sends
        self.into: Flow  # what this side receives

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # asyncio sets TCP_NODELAY on TCP sockets already; be explicit, since a proxy that
        # waits to coalesce small writes adds exactly the latency it should not.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.link.made(self)

    def data_received(self, data: bytes) -> None:
        self.out.feed(data)

    def eof_received(self) -> bool:
        self.out.feed(_EOF)
        return True  # half-close: keep sending the other direction

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.link.lost(rst=exc is not None)

    def pause_writing(self) -> None:
        self.into.hold(_WRITE)

    def resume_writing(self) -> None:
        self.into.release(_WRITE)
        self.into.pump()


class Link:
    """One client connection and its upstream connection."""

    __slots__ = ("client", "closed", "connecting", "down", "proxy", "up", "upstream")

    def __init__(self, proxy: "ChaosProxy") -> None:
        self.proxy = proxy
        self.client = Side(self)
        self.upstream = Side(self)
        self.up = Flow(self, self.client, self.upstream, 0)
        self.down = Flow(self, self.upstream, self.client, 1)
        self.client.out = self.upstream.into = self.up
        self.upstream.out = self.client.into = self.down
        self.closed = False
        self.connecting: asyncio.Task | None = None

    def made(self, side: Side) -> None:
        proxy = self.proxy
        if side is self.client:
            proxy.connections_total += 1
            proxy.links.add(self)
            # Nothing is read from the client until there is somewhere to send it.
            self.up.hold(_CONNECTING)
            if proxy.blackholed:
                self.up.hold(BLACKHOLE)
                self.down.hold(BLACKHOLE)
            else:
                self._connect()
            return
        if self.closed:  # the client left while the broker was answering
            assert side.transport is not None
            side.transport.abort()
            return
        if self.down.holds:
            side.transport.pause_reading()
        self.up.release(_CONNECTING)

    def unblock(self) -> None:
        self.up.release(BLACKHOLE)
        self.down.release(BLACKHOLE)
        if self.connecting is None and not self.closed:
            self._connect()  # accepted during the partition: only now reach the broker
        self.up.pump()
        self.down.pump()

    def _connect(self) -> None:
        self.connecting = self.proxy.loop.create_task(self._open())

    async def _open(self) -> None:
        host, port = self.proxy.upstream
        try:
            await self.proxy.loop.create_connection(lambda: self.upstream, host, port)
        except OSError:
            # The client sees a reset, as it would connecting to a broker that is down.
            self.proxy.upstream_failures += 1
            self.close(rst=True)

    def lost(self, rst: bool) -> None:
        """A side's socket is gone: close the other; forget the link once both are gone."""
        self.close(rst)
        if self.client.transport is None and self.upstream.transport is None:
            self.proxy.links.discard(self)

    def done(self) -> None:
        """A direction delivered its FIN; when both have, the connection is over."""
        if self.up.done and self.down.done:
            self.close(rst=False)

    def close(self, rst: bool) -> None:
        """Close both sides: with FIN after what is buffered, or at once with RST.

        A RST also ends a link that is already closing: a FIN-close waits for a slow peer
        to take the last bytes, and a reset (or stopping the proxy) must not wait.
        """
        if not self.closed:
            self.closed = True
            self.up.stop()
            self.down.stop()
            if self.connecting is not None and not self.connecting.done():
                self.connecting.cancel()
        elif not rst:
            return
        for side in (self.client, self.upstream):
            transport = side.transport
            if transport is None:
                continue
            if rst:
                sock = transport.get_extra_info("socket")
                # A socket the kernel already closed has nothing left to reset.
                with contextlib.suppress(OSError, AttributeError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
                transport.abort()
            else:
                transport.close()


class Flow:
    """One direction of a link: bytes read from `src`, written to `dst`."""

    __slots__ = (
        "done",
        "dst",
        "holds",
        "link",
        "proxy",
        "queue",
        "queued",
        "src",
        "timer",
        "way",
    )

    def __init__(self, link: Link, src: Side, dst: Side, way: int) -> None:
        self.link = link
        self.proxy = link.proxy
        self.src = src
        self.dst = dst
        self.way = way
        # [arrival, release, bytes | memoryview | _EOF], in stream order
        self.queue: deque[list] = deque()
        self.queued = 0
        self.holds: set[str] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.done = False

    def feed(self, data: bytes | object) -> None:
        proxy = self.proxy
        if proxy.clean and not self.queue and data is not _EOF:
            proxy.bytes[self.way] += len(data)  # type: ignore[arg-type]
            self.dst.transport.write(data)  # type: ignore[union-attr, arg-type]
            return
        now = proxy.loop.time()
        release = now + proxy.delay() if proxy.latency_ms or proxy.jitter_ms else now
        if self.queue:
            release = max(release, self.queue[-1][1])  # jitter never reorders the stream
        self.queue.append([now, release, data])
        if data is not _EOF:
            self.queued += len(data)  # type: ignore[arg-type]
            if self.queued > QUEUE_LIMIT:
                self.hold(_FULL)
        self.pump()

    def pump(self) -> None:
        """Write what is due; set a timer for what is not."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        proxy = self.proxy
        queue = self.queue
        if not queue or proxy.blackholed or self.link.closed or _WRITE in self.holds:
            return
        transport = self.dst.transport
        if transport is None:
            return
        now = proxy.loop.time()
        while queue:
            entry = queue[0]
            if entry[1] > now:
                self._wake(entry[1])
                break
            data = entry[2]
            if data is _EOF:
                queue.popleft()
                self._finish(transport)
                return
            size = len(data)
            if proxy.rate:
                allowed = proxy.buckets[self.way].grant(self, size, now)
                if not allowed:  # the bucket pumps this flow again in its turn
                    break
                if allowed < size:
                    size = allowed
                    entry[2] = memoryview(data)[size:]
                    data = memoryview(data)[:size]
                else:
                    queue.popleft()
            else:
                queue.popleft()
            self.queued -= size
            proxy.bytes[self.way] += size
            transport.write(data)
        if _FULL in self.holds and self.queued <= QUEUE_LIMIT // 2:
            self.release(_FULL)

    def retime(self) -> None:
        """Recompute release times with the current latency (it changed)."""
        previous = 0.0
        proxy = self.proxy
        delayed = proxy.latency_ms or proxy.jitter_ms
        for entry in self.queue:
            release = entry[0] + proxy.delay() if delayed else entry[0]
            entry[1] = previous = max(release, previous)
        self.pump()

    def hold(self, why: str) -> None:
        if not self.holds and self.src.transport is not None:
            self.src.transport.pause_reading()
        self.holds.add(why)

    def release(self, why: str) -> None:
        if why not in self.holds:
            return
        self.holds.discard(why)
        if not self.holds and self.src.transport is not None and not self.link.closed:
            self.src.transport.resume_reading()

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.queued = 0
        waiting = self.proxy.buckets[self.way].waiting
        if self in waiting:
            waiting.remove(self)

    def _wake(self, when: float) -> None:
        self.timer = self.proxy.loop.call_at(when, self.pump)

    def _finish(self, transport: asyncio.Transport) -> None:
        if transport.can_write_eof():
            transport.write_eof()
        self.done = True
        self.link.done()


class Bucket:
    """The bandwidth cap of one direction of a proxy, shared by all its connections: the
    cap is the link's, so a broker whose clients open more connections gets no more.

    A token bucket one write deep (a virtual clock): each write of n bytes keeps the link
    busy for n / rate seconds, and nothing else is written until then. Connections that
    find it busy wait in line and are served in turn.
    """

    __slots__ = ("free_at", "proxy", "serving", "timer", "waiting")

    def __init__(self, proxy: "ChaosProxy") -> None:
        self.proxy = proxy
        self.free_at = 0.0
        self.waiting: deque[Flow] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.serving = False

    def refill(self) -> None:
        """The rate changed: free at once, nobody waiting (every flow is pumped anew)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.waiting.clear()
        self.free_at = 0.0

    def grant(self, flow: "Flow", size: int, now: float) -> int:
        """How many of `size` bytes the flow may write now; 0 puts it in line."""
        proxy = self.proxy
        if now < self.free_at or (self.waiting and not self.serving):
            if flow not in self.waiting:
                self.waiting.append(flow)
            if self.timer is None:
                self.timer = proxy.loop.call_at(self.free_at, self._serve)
            return 0
        allowed = min(size, proxy.burst)
        # A timer that fired a little late does not lower the rate; an idle link saves
        # nothing up for later.
        start = self.free_at if now - self.free_at < BURST_SECONDS else now
        self.free_at = start + allowed / proxy.rate
        return allowed

    def _serve(self) -> None:
        self.timer = None
        loop = self.proxy.loop
        for _ in range(len(self.waiting)):
            if loop.time() < self.free_at:
                break
            flow = self.waiting.popleft()
            self.serving = True
            try:
                flow.pump()  # back at the end of the line if it wants more
            finally:
                self.serving = False
        if self.waiting and self.timer is None:
            self.timer = loop.call_at(self.free_at, self._serve)
