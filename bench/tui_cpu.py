"""The TUI's own CPU while it shows four brokers at full update rate.

    .venv/bin/python -m bench.tui_cpu [--seconds 30] [--size 200x50] [--rate 2]

Feeds synthetic Snapshots for four brokers (every figure changes every tick, an event
every few seconds) into the real Run screen of the real app, headless, at the Snapshot
cadence (2 per second), and reports the process's CPU time over the window as a share
of one core (psutil). Target: under 10%.
"""

import argparse
import asyncio
import math
import queue
import random
import threading
import time

import psutil

from lab.ledger import LedgerCounts
from lab.metrics import BrokerSnapshot, Event, Latency, Snapshot
from tui import make_app
from tui.feed import RunInfo

BROKERS = ("kafka", "rabbitmq", "redis", "postgres")
WARMUP = 2.0  # seconds before measuring: mounting and the first layout are not the point


class SyntheticFeed:
    """Snapshots of a run that never ends, `rate` per second, every number moving."""

    def __init__(self, rate: float) -> None:
        self.result = None
        self.interval = 1.0 / rate
        self.rng = random.Random(7)
        self.queues: list[queue.Queue] = []
        self.stop = threading.Event()
        self.info = RunInfo(BROKERS, {"rate": {"profile": "steady", "rate": 5000}}, live=True)
        self.sent = 0

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue()
        self.queues.append(q)
        threading.Thread(target=self._run, daemon=True).start()
        return q

    def command(self, cmd: object) -> None:
        pass

    def close(self) -> None:
        self.stop.set()

    def _broker(self, i: int, name: str, t: float) -> BrokerSnapshot:
        wave = 1 + 0.2 * math.sin(t / 3 + i)
        rate = 5000 * wave * (1 + self.rng.uniform(-0.05, 0.05))
        acked = int(5000 * t)
        lat = Latency(1000, 2 + i, 4 + i, 9 + 3 * i * wave, 30 + i)
        return BrokerSnapshot(
            broker=name,
            phase="running",
            state="healthy",
            producers=2,
            consumers=2,
            target_rate=5000,
            produce_rate=rate,
            consume_rate=rate * self.rng.uniform(0.9, 1.1),
            lag=self.rng.randint(0, 5000),
            dead_letters=int(t) // 7,
            retention_dropped=0,
            publish=lat,
            e2e=lat,
            ledger=LedgerCounts(
                produced=acked,
                acked=acked,
                delivered=acked - 40,
                in_flight=40,
                duplicates=int(t) // 11,
            ),
            cpu_percent=self.rng.uniform(5, 80),
            rss_bytes=int(2**28 * wave),
        )

    def _run(self) -> None:
        t0 = time.monotonic()
        seq = 0
        while not self.stop.is_set():
            t = time.monotonic() - t0
            events = ()
            if seq % 6 == 0:
                events = (Event(round(t, 3), "fault", f"latency {BROKERS[seq % 4]} ms=100"),)
            snap = Snapshot(
                run_id="bench",
                recipe="bench",
                mode="parallel",
                seq=seq,
                t=round(t, 3),
                duration=3600,
                phase="running",
                brokers=tuple(self._broker(i, b, t) for i, b in enumerate(BROKERS)),
                events=events,
            )
            for q in self.queues:
                q.put(snap)
            self.sent += 1
            seq += 1
            self.stop.wait(max(0.0, t0 + seq * self.interval - time.monotonic()))


async def measure(seconds: float, size: tuple[int, int], rate: float) -> dict:
    feed = SyntheticFeed(rate)
    app = make_app(feed=feed, info=feed.info, cursor_blink=False)
    me = psutil.Process()
    result: dict = {}

    async def observe() -> None:
        await asyncio.sleep(WARMUP)
        screen = app.screen
        before, seq0, sent0 = me.cpu_times(), screen.rendered_seq, feed.sent
        wall0 = time.monotonic()
        await asyncio.sleep(seconds)
        after, wall = me.cpu_times(), time.monotonic() - wall0
        busy = (after.user - before.user) + (after.system - before.system)
        result.update(
            cpu_percent=100 * busy / wall,
            seconds=wall,
            snapshots=feed.sent - sent0,
            renders=screen.rendered_seq - seq0,
        )
        feed.close()
        app.exit()

    async with app.run_test(size=size, headless=True):
        await observe()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="200x50", help="terminal WIDTHxHEIGHT")
    parser.add_argument("--rate", type=float, default=2.0, help="Snapshots per second")
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    r = asyncio.run(measure(args.seconds, (width, height), args.rate))
    print(
        f"TUI CPU: {r['cpu_percent']:.1f}% of one core over {r['seconds']:.0f} s, four brokers "
        f"at {args.size}, {r['snapshots']} Snapshots in, {r['renders']} rendered "
        f"(target: under 10%)"
    )


if __name__ == "__main__":
    main()
