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
import ipaddress
import math
import random
from dataclasses import dataclass, field

from lab.errors import LabError, unknown_choice
from lab.faults.actions import ACTIONS, NETWORK_ACTIONS
from lab.faults.links import BLACKHOLE, BURST_SECONDS, MIN_BURST, Bucket, Link


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
        self.links: set[Link] = set()
        self.bytes = [0, 0]  # forwarded up, down
        self.connections_total = 0
        self.upstream_failures = 0
        self.latency_ms = 0.0
        self.jitter_ms = 0.0
        self.rate = 0.0  # bytes per second, 0 = no cap
        self.burst = MIN_BURST
        self.buckets = (Bucket(self), Bucket(self))  # up, down
        self.blackholed = False
        self.clean = True  # no toxic at all: the one-write fast path applies
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and listen. Raises OSError when the port is taken."""
        self.loop = asyncio.get_running_loop()
        host, port = self.listen
        self._server = await self.loop.create_server(
            lambda: Link(self).client, host, port, backlog=512
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
        defaults = ACTIONS[action].params
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
                link.up.hold(BLACKHOLE)
                link.down.hold(BLACKHOLE)
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
