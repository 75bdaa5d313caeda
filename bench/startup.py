"""Time-to-healthy (cold and warm) and idle memory of the four native brokers.

    .venv/bin/python -m bench.startup [--rounds 3] [--settle 10]

Cold: a new state dir, so first-boot work (initdb, Kafka's storage format, RabbitMQ's
schema) is included. Warm: the same state dir again after `down`, as `lab up` on a
machine that has run the lab before. "Healthy" is the lab's readiness: each broker
answers a real client call. Idle RSS is summed over each broker's processes after it
has settled. Prints a Markdown table for docs/performance.md.
"""

import argparse
import statistics
import time

from bench.common import isolated_runtime
from lab import brokers as registry
from lab.runtimes.native import NativeRuntime


def timed_up(runtime: NativeRuntime) -> tuple[float, dict[str, float]]:
    t0 = time.monotonic()
    healthy: dict[str, float] = {}

    def progress(broker: str, message: str) -> None:
        if message.startswith("healthy"):
            healthy[broker] = time.monotonic() - t0

    runtime.up(list(registry.default_names()), progress)
    return time.monotonic() - t0, healthy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="warm starts to take the median of")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before idle RSS")
    parser.add_argument("--port-base", type=int, default=31000)
    args = parser.parse_args()

    with isolated_runtime(args.port_base) as runtime:
        cold_total, cold = timed_up(runtime)
        time.sleep(args.settle)
        idle = {
            s.broker: s for s in runtime.status(list(registry.default_names()), sample_seconds=1.0)
        }
        warm_totals, warm = [], {b: [] for b in registry.default_names()}
        for _ in range(args.rounds):
            runtime.down([])
            total, per_broker = timed_up(runtime)
            warm_totals.append(total)
            for broker, seconds in per_broker.items():
                warm[broker].append(seconds)

    print(
        f"| broker | cold start (s) | warm start (s, median of {args.rounds}) "
        "| idle RSS (MiB) | idle CPU (%) | version |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for broker in registry.default_names():
        s = idle[broker]
        print(
            f"| {broker} | {cold[broker]:.1f} | {statistics.median(warm[broker]):.1f} "
            f"| {s.rss_bytes / 2**20:.0f} | {s.cpu_percent:.1f} | {s.version} |"
        )
    print(
        f"| **all four, in parallel** | {cold_total:.1f} | {statistics.median(warm_totals):.1f} "
        f"| {sum(s.rss_bytes for s in idle.values()) / 2**20:.0f} "
        f"| {sum(s.cpu_percent for s in idle.values()):.1f} | |"
    )


if __name__ == "__main__":
    main()
