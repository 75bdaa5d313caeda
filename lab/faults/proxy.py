"""A TCP chaos proxy: one loopback listener forwarding to one upstream, with toxics.

Toxiproxy's toxics are the model, in pure asyncio so the lab needs no extra binary:

    latency    each chunk waits ms ± jitter, never overtaking the chunk before it
    bandwidth  at most kbps kilobytes (1000 bytes) per second in each direction,
               shared by all connections, like a real link's capacity
    blackhole  a partition: nothing moves, connections hang, senders block on full
               buffers; new connections are accepted but not forwarded until heal
    reset      every open connection is closed with a TCP RST on both sides (one-shot)
    heal       every toxic removed; data held back by latency or a blackhole flows on

    proxy = ChaosProxy(listen=("127.0.0.1", 18379), upstream=("127.0.0.1", 17379))
    await proxy.start()
    proxy.apply("latency", ms=200, jitter=50)

The proxy sits in the path of every message of every run, so without toxics a read is
forwarded by one write, with asyncio's own flow control (pause_writing) for back-pressure.
Asyncio's protocols, not streams: no task or future per chunk.
"""

import asyncio
import contextlib
import ipaddress
import math
import random
import socket
import struct
from collections import deque
from dataclasses import dataclass, field

from lab.errors import LabError, unknown_choice
from lab.faults import ACTIONS, NETWORK_ACTIONS

# Queued bytes per direction (latency, bandwidth) before the sender is paused: like a
# TCP window, it bounds memory and, under latency, throughput to QUEUE_LIMIT per delay.
QUEUE_LIMIT = 4 * 1024 * 1024
# A capped write is at most this many seconds of traffic: small, so a cap holds over short
# spans too, but never below one Ethernet frame, so a slow cap still sends whole packets.
BURST_SECONDS = 0.02
MIN_BURST = 1500
# Reasons a direction stops reading from its source; it reads again when none is left.
_CONNECTING, _BLACKHOLE, _FULL, _WRITE = "connecting", "blackhole", "full", "write"
_EOF = object()  # marks the source's FIN in a direction's queue, after its last data
_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


@dataclass(frozen=True)
class ProxyStats:
    listen: str  # host:port clients connect to
    upstream: str  # host:port of the broker
    connections_open: int
    connections_total: int
    bytes_up: int  # client -> broker, forwarded
    bytes_down: int  # broker -> client, forwarded
    upstream_failures: int  # client connections dropped because the broker refused
    toxics: dict[str, dict[str, float]] = field(default_factory=dict)


class ChaosProxy:
    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], name: str = "") -> None:
        if not ipaddress.ip_address(listen[0]).is_loopback:
            raise LabError(f"chaos proxy must listen on loopback, not {listen[0]}")
        self.listen = listen
        self.upstream = upstream
        self.name = name or f"{upstream[0]}:{upstream[1]}"
        self.port = listen[1]
        self.links: set[_Link] = set()
        self.bytes = [0, 0]  # forwarded up, down
        self.connections_total = 0
        self.upstream_failures = 0
        self.latency_ms = 0.0
        self.jitter_ms = 0.0
        self.rate = 0.0  # bytes per second, 0 = no cap
        self.burst = MIN_BURST
        self.buckets = (_Bucket(self), _Bucket(self))  # up, down
        self.blackholed = False
        self.clean = True  # no toxic at all: the one-write fast path applies
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and listen. Raises OSError when the port is taken."""
        self.loop = asyncio.get_running_loop()
        host, port = self.listen
        self._server = await self.loop.create_server(
            lambda: _Link(self).client, host, port, backlog=512
        )
        # The bound port: the kernel's choice when asked for port 0.
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self.links):
            link.close(rst=True)
        if self._server is not None:
            await self._server.wait_closed()

    # --- toxics ---------------------------------------------------------------------

    def apply(self, action: str, **params: float) -> None:
        """Any network fault action of lab.faults, with that action's arguments."""
        if action not in NETWORK_ACTIONS:
            raise unknown_choice("network fault", action, NETWORK_ACTIONS)
        defaults = ACTIONS[action][1]
        for key in params:
            if key not in defaults:
                names = ", ".join(defaults) or "none"
                raise LabError(f"fault '{action}' takes no argument '{key}' (it takes: {names})")
        args = {**defaults, **params}
        if action == "latency":
            self.set_latency(args["ms"], args["jitter"])
        elif action == "bandwidth":
            self.set_bandwidth(args["kbps"])
        elif action == "blackhole":
            self.set_blackhole(True)
        elif action == "reset":
            self.reset()
        else:
            self.heal()

    def set_latency(self, ms: float, jitter: float = 0.0) -> None:
        """Delay every chunk by ms ± jitter milliseconds; 0, 0 removes the toxic."""
        if not (0 <= ms < math.inf and 0 <= jitter < math.inf):
            raise LabError(f"latency needs ms >= 0 and jitter >= 0, not ms={ms} jitter={jitter}")
        self.latency_ms, self.jitter_ms = float(ms), float(jitter)
        self._changed()
        # Data already waiting gets the new delay, so lowering or removing it frees it now.
        for link in list(self.links):
            link.up.retime()
            link.down.retime()

    def set_bandwidth(self, kbps: float) -> None:
        """Cap each direction at kbps * 1000 bytes/s; 0 removes the cap."""
        if not 0 <= kbps < math.inf:
            raise LabError(f"bandwidth needs kbps >= 0, not {kbps}")
        self.rate = float(kbps) * 1000.0
        self.burst = max(MIN_BURST, int(self.rate * BURST_SECONDS))
        self._changed()
        for bucket in self.buckets:
            bucket.refill()
        for link in list(self.links):
            link.up.pump()
            link.down.pump()

    def set_blackhole(self, on: bool = True) -> None:
        if on == self.blackholed:
            return
        self.blackholed = on
        self._changed()
        for link in list(self.links):
            if on:
                link.up.hold(_BLACKHOLE)
                link.down.hold(_BLACKHOLE)
            else:
                link.unblock()

    def reset(self) -> None:
        """RST every open connection, both sides. Later connections are not affected."""
        for link in list(self.links):
            link.close(rst=True)

    def heal(self) -> None:
        self.set_blackhole(False)
        self.set_bandwidth(0)
        self.set_latency(0, 0)

    def toxics(self) -> dict[str, dict[str, float]]:
        active: dict[str, dict[str, float]] = {}
        if self.latency_ms or self.jitter_ms:
            active["latency"] = {"ms": self.latency_ms, "jitter": self.jitter_ms}
        if self.rate:
            active["bandwidth"] = {"kbps": self.rate / 1000.0}
        if self.blackholed:
            active["blackhole"] = {}
        return active

    def stats(self) -> ProxyStats:
        return ProxyStats(
            listen=f"{self.listen[0]}:{self.port}",
            upstream=f"{self.upstream[0]}:{self.upstream[1]}",
            connections_open=len(self.links),
            connections_total=self.connections_total,
            bytes_up=self.bytes[0],
            bytes_down=self.bytes[1],
            upstream_failures=self.upstream_failures,
            toxics=self.toxics(),
        )

    # --- internals ------------------------------------------------------------------

    def _changed(self) -> None:
        self.clean = not (self.latency_ms or self.jitter_ms or self.rate or self.blackholed)

    def _now(self) -> float:
        return self.loop.time() if self.loop else 0.0

    def delay(self) -> float:
        """One chunk's delay in seconds."""
        ms = self.latency_ms
        if self.jitter_ms:
            ms += random.uniform(-self.jitter_ms, self.jitter_ms)
        return ms / 1000.0 if ms > 0 else 0.0


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: the client's or the upstream's."""

    __slots__ = ("into", "link", "out", "transport")

    def __init__(self, link: "_Link") -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.out: _Flow  # what this side sends
        self.into: _Flow  # what this side receives

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


class _Link:
    """One client connection and its upstream connection."""

    __slots__ = ("client", "closed", "connecting", "down", "proxy", "up", "upstream")

    def __init__(self, proxy: ChaosProxy) -> None:
        self.proxy = proxy
        self.client = _Side(self)
        self.upstream = _Side(self)
        self.up = _Flow(self, self.client, self.upstream, 0)
        self.down = _Flow(self, self.upstream, self.client, 1)
        self.client.out = self.upstream.into = self.up
        self.upstream.out = self.client.into = self.down
        self.closed = False
        self.connecting: asyncio.Task | None = None

    def made(self, side: _Side) -> None:
        proxy = self.proxy
        if side is self.client:
            proxy.connections_total += 1
            proxy.links.add(self)
            # Nothing is read from the client until there is somewhere to send it.
            self.up.hold(_CONNECTING)
            if proxy.blackholed:
                self.up.hold(_BLACKHOLE)
                self.down.hold(_BLACKHOLE)
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
        self.up.release(_BLACKHOLE)
        self.down.release(_BLACKHOLE)
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


class _Flow:
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

    def __init__(self, link: _Link, src: _Side, dst: _Side, way: int) -> None:
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


class _Bucket:
    """The bandwidth cap of one direction of a proxy, shared by all its connections: the
    cap is the link's, so a broker whose clients open more connections gets no more.

    A token bucket one write deep (a virtual clock): each write of n bytes keeps the link
    busy for n / rate seconds, and nothing else is written until then. Connections that
    find it busy wait in line and are served in turn.
    """

    __slots__ = ("free_at", "proxy", "serving", "timer", "waiting")

    def __init__(self, proxy: ChaosProxy) -> None:
        self.proxy = proxy
        self.free_at = 0.0
        self.waiting: deque[_Flow] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.serving = False

    def refill(self) -> None:
        """The rate changed: free at once, nobody waiting (every flow is pumped anew)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.waiting.clear()
        self.free_at = 0.0

    def grant(self, flow: "_Flow", size: int, now: float) -> int:
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
