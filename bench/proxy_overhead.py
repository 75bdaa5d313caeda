"""What the chaos proxy costs: redis-benchmark against Redis directly and through the proxy.

    .venv/bin/python -m bench.proxy_overhead [--requests 100000] [--rounds 3]

Starts a native Redis with the lab's runtime in a state dir of its own, and a ProxyHost
in front of it with no toxic (the path every message of every run takes). Runs
`redis-benchmark -t set,get -q` with pipelining (-P 16) and without, alternating direct
and proxied runs, and prints the median ops/s of each, their ratio, and the CPU seconds
the proxy process spent (also per request). Stops everything afterwards.
"""

import argparse
import re
import statistics
import subprocess

import psutil

from bench.common import cpu_seconds, isolated_runtime
from lab.faults.proxy_host import ProxyHost

TESTS = ("SET", "GET")
_RESULT = re.compile(r"(SET|GET): ([\d.]+) requests per second")


def redis_benchmark(port: int, password: str, requests: int, pipeline: int) -> dict[str, float]:
    """ops/s per test of one redis-benchmark run (50 clients, its default)."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-a", password]
    argv += ["-t", "set,get", "-n", str(requests), "-P", str(pipeline), "-q"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600).stdout
    # -q still redraws a progress line with \r: the last figure per test is the result.
    found = {name: float(value) for name, value in _RESULT.findall(out)}
    missing = [t for t in TESTS if t not in found]
    if missing:
        raise RuntimeError(f"redis-benchmark printed no result for {missing}: {out[-500:]!r}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="per test and run")
    parser.add_argument("--rounds", type=int, default=3, help="runs to take the median of")
    parser.add_argument("--port-base", type=int, default=33000)
    args = parser.parse_args()

    host = None
    rows = []
    with isolated_runtime(args.port_base, ["redis"]) as runtime:
        try:
            endpoint = runtime.endpoint("redis")
            password = endpoint.password or ""
            proxy_port = runtime.settings.proxy_port("redis")
            host = ProxyHost.start({"redis": (proxy_port, endpoint.host, endpoint.port)})
            proxy = [psutil.Process(host.pid)]
            for pipeline in (16, 1):
                direct: dict[str, list[float]] = {t: [] for t in TESTS}
                proxied: dict[str, list[float]] = {t: [] for t in TESTS}
                cpu = []
                for _ in range(args.rounds):
                    for test, ops in redis_benchmark(
                        endpoint.port, password, args.requests, pipeline
                    ).items():
                        direct[test].append(ops)
                    before = cpu_seconds(proxy)
                    for test, ops in redis_benchmark(
                        proxy_port, password, args.requests, pipeline
                    ).items():
                        proxied[test].append(ops)
                    cpu.append(cpu_seconds(proxy) - before)
                cpu_run = statistics.median(cpu)
                for test in TESTS:
                    d, p = statistics.median(direct[test]), statistics.median(proxied[test])
                    rows.append((f"{test} -P {pipeline}", d, p, cpu_run))
        finally:
            if host is not None:
                host.stop()

    print(
        f"redis-benchmark, 50 clients, {args.requests} requests per test, "
        f"median of {args.rounds} rounds\n"
    )
    print(
        "| test | direct ops/s | proxied ops/s | proxied/direct | proxy CPU s per run (SET+GET) |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, d, p, cpu in rows:
        print(f"| {name} | {d:,.0f} | {p:,.0f} | {p / d:.2f} | {cpu:.2f} |")
    per_request = {name.split(" ", 1)[1]: cpu / (2 * args.requests) for name, *_, cpu in rows}
    print(
        "\nproxy CPU per proxied request: "
        + ", ".join(f"{p}: {s * 1e6:.1f} µs" for p, s in per_request.items())
    )


if __name__ == "__main__":
    main()
