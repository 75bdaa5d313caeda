"""The highest rate each broker sustains through the lab, and what the lab costs.

    .venv/bin/python -m bench.throughput [--brokers ...] [--sizes 100,1024] [--seconds 10]
    .venv/bin/python -m bench.throughput --overhead     # the engine's own CPU at 20k msgs/s

Ladder: sequential mode, one broker at a time, one producer and one consumer, durable
settings ("safe"), no chaos proxy. Each step runs `--seconds` at a target rate; a rate is
sustained when producers and consumers both reach 97% of it, end-to-end p99 stays under
500 ms and nothing is lost. Rates double from 2,000 msgs/s until one is not sustained, then
the midpoint between the last good and the first bad rate is tried. Kafka runs once per client
(confluent-kafka, kafka-python). Next to each result: the broker's own load generator
(bench/native_tools.py) at the same size, and the ratio lab/native.

Harness CPU is the CPU time of the lab's processes (engine, workers) per second of the
run, per 10k msgs/s delivered; broker CPU is the broker's processes'.

--overhead: all four brokers in parallel at 5k msgs/s each (20k in all) for 30 s: the
CPU of the engine process alone (clock, reader, monitors; not the workers, not the
client libraries) and the spacing of Snapshots.
"""

import argparse
import itertools
import statistics
import time
from pathlib import Path

import psutil

from bench import native_tools, profiling
from bench.common import CpuMeter, cpu_seconds, default_port_base, isolated_runtime
from lab.engine.session import Session
from lab.recipes import parse
from lab.runtimes.native import NativeRuntime

SUSTAINED = 0.97


def trial(
    runtime: NativeRuntime,
    broker: str,
    rate: float,
    size: int,
    seconds: float,
    client: str = "confluent",
    profile: Path | None = None,
) -> dict:
    recipe = parse(
        {
            "name": "bench",
            "duration": seconds,
            "warmup": 2,
            "drain_timeout": 15,
            "durability": "safe",
            "chaos_proxy": False,
            "partitions": 4,
            "rate": {"rate": rate},
            "message": {"size": size},
            "consumers": {"prefetch": 500},
            "kafka": {"client": client},
        }
    )
    session = Session(runtime, stop_started_brokers=False)
    session.start(recipe, [broker], "sequential")
    cpu, lags, spies = CpuMeter(), [], []
    spy_seconds = max(1, int(seconds) - 4)
    for snap in session.snapshots():
        b = snap.broker(broker)
        if b.phase == "running":
            # Workers live only during the run: their CPU is read while they do.
            roles = worker_roles(session)
            cpu.sample(roles)
            if b.lag is not None:
                lags.append(b.lag)
            if profile and not spies:
                spies = _spy(profile, f"{broker}-{client}-{size}-{rate:.0f}", roles, spy_seconds)
    result = session.wait()
    session.close()
    costs = {}
    for role, out, proc in spies:
        proc.wait()
        costs[role] = profiling.summary(out, rate * spy_seconds) if out.exists() else {}
        process_us = cpu.percent([role]) / 100 * 1e6 / rate
        print("   ", profiling.describe(role, costs[role], process_us), flush=True)
    s = result.brokers[broker].summary
    ok = (
        s["produce_rate"] >= SUSTAINED * rate
        and s["consume_rate"] >= SUSTAINED * rate
        and s["e2e_latency_ms"]["p99"] < 500
        and s["lost"] == 0
    )
    return {
        "broker": broker,
        "size": size,
        "rate": rate,
        "ok": ok,
        "sent": s["produce_rate"],
        "received": s["consume_rate"],
        "p50": s["e2e_latency_ms"]["p50"],
        "p99": s["e2e_latency_ms"]["p99"],
        "lost": s["lost"],
        "duplicates": s["duplicates"],
        # The steady part: the first probes of a run see the warm-up's start.
        "lag_max": max(lags[len(lags) // 4 :]) if lags else None,
        "lab_cpu": cpu.percent(),
        "producer_cpu": cpu.percent(["producer"]),
        "consumer_cpu": cpu.percent(["consumer"]),
        "engine_cpu": cpu.percent(["engine"]),
        "broker_cpu": cpu.percent([broker]),
        "steal": cpu.steal_percent(),
        "profile": costs,
        "settings": result.brokers[broker].settings,
        "client": result.brokers[broker].client,
    }


def _spy(where: Path, name: str, roles: dict[int, str], seconds: int) -> list:
    where.mkdir(parents=True, exist_ok=True)
    spies = []
    for pid, role in sorted(roles.items(), key=lambda r: r[1]):
        out = where / f"{name}-{role}-{pid}.txt"
        proc = profiling.start(pid, seconds, out)
        if proc is not None:
            spies.append((role, out, proc))
    return spies


def worker_roles(session: Session) -> dict[int, str]:
    return {w.process.pid: w.role for run in session.runs for w in run.workers if w.process.pid}


def ladder(runtime: NativeRuntime, broker: str, size: int, seconds: float, client: str) -> dict:
    best, rate, first_bad = None, 2000.0, None
    while first_bad is None and rate <= 400_000:
        t = trial(runtime, broker, rate, size, seconds, client)
        print(
            f"  {broker} {size} B {rate:>9,.0f}/s: sent {t['sent']:,.0f} recv {t['received']:,.0f}"
            f" p99 {t['p99']:,.0f} ms {'ok' if t['ok'] else 'NOT sustained'}",
            flush=True,
        )
        if t["ok"]:
            best, rate = t, rate * 2
        else:
            first_bad = rate
    if best and first_bad:
        t = trial(runtime, broker, (best["rate"] + first_bad) / 2, size, seconds, client)
        print(f"  {broker} {size} B {t['rate']:>9,.0f}/s: {'ok' if t['ok'] else 'NOT sustained'}")
        if t["ok"]:
            best = t
    return best or t


def overhead(runtime: NativeRuntime, seconds: float) -> None:
    brokers = ["kafka", "rabbitmq", "redis", "postgres"]
    recipe = parse(
        {
            "name": "overhead",
            "duration": seconds,
            "warmup": 3,
            "chaos_proxy": False,
            "rate": {"rate": 5000},
            "message": {"size": 100},
            "consumers": {"prefetch": 500},
        }
    )
    session = Session(runtime, stop_started_brokers=False)
    me = psutil.Process()
    session.start(recipe, brokers, "parallel")
    times, cpu_start, t_start = [], None, None
    for snap in session.snapshots():
        if snap.phase == "running":
            times.append(time.monotonic())
            if cpu_start is None:
                cpu_start, t_start = cpu_seconds([me]), time.monotonic()
            cpu_end, t_end = cpu_seconds([me]), time.monotonic()
    result = session.wait()
    session.close()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    total = sum(result.brokers[b].summary["consume_rate"] for b in brokers)
    print(
        f"delivered {total:,.0f} msgs/s in all; engine process CPU "
        f"{100 * (cpu_end - cpu_start) / (t_end - t_start):.1f}% of one core"
    )
    print(
        f"snapshot spacing: mean {statistics.mean(gaps):.3f} s, max {max(gaps):.3f} s, "
        f"stdev {statistics.pstdev(gaps):.3f} s over {len(gaps)} snapshots"
    )


def _plan(brokers: list[str], at: str | None) -> list[tuple[str, str, float | None]]:
    """(broker, Kafka client, rate or None for a ladder) to measure."""
    if at:
        plan = []
        for item in at.split(","):
            who, _, rate = item.partition("=")
            broker, _, client = who.partition("/")
            plan.append((broker, client or "confluent", float(rate)))
        return plan
    # The client option only matters to Kafka; the others ignore it.
    return [
        (b, c, None)
        for b in brokers
        for c in (["confluent", "kafka-python"] if b == "kafka" else ["confluent"])
    ]


def _fixed_rates(spec: str | None, top: float | None) -> list[float]:
    """--fixed 1000,10000,50%: absolute rates, and shares of the sustained maximum."""
    rates = []
    for raw in (spec or "").split(","):
        item = raw.strip()
        if item.endswith("%"):
            if top:
                rates.append(round(top * float(item[:-1]) / 100, -2))
        elif item:
            rates.append(float(item))
    return rates


def per10k(cpu: float, received: float) -> float:
    return cpu / (received / 10_000) if received else 0.0


def print_fixed(rows: list[dict]) -> None:
    print(
        "\n| broker | client | size | rate msgs/s | received | e2e p50 / p99 ms | lag max | "
        "producer % | consumer % | engine % | harness % | harness % per 10k | "
        "broker % | broker % per 10k | lost / dup | steal % |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in rows:
        print(
            f"| {t['broker']} | {t['client']} | {t['size']} | {t['rate']:,.0f} | "
            f"{t['received']:,.0f} | {t['p50']:.1f} / {t['p99']:.1f} | "
            f"{'-' if t['lag_max'] is None else format(t['lag_max'], ',')} | "
            f"{t['producer_cpu']:.0f} | {t['consumer_cpu']:.0f} | {t['engine_cpu']:.0f} | "
            f"{t['lab_cpu']:.0f} | {per10k(t['lab_cpu'], t['received']):.0f} | "
            f"{t['broker_cpu']:.0f} | {per10k(t['broker_cpu'], t['received']):.0f} | "
            f"{t['lost']} / {t['duplicates']} | {t['steal']:.1f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default="kafka,rabbitmq,redis,postgres")
    parser.add_argument("--sizes", default="100,1024")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--overhead", action="store_true")
    parser.add_argument(
        "--at",
        help="no ladder: one trial per BROKER[/CLIENT]=RATE (comma-separated), e.g. "
        "kafka=128000,kafka/kafka-python=32000,redis=48000",
    )
    parser.add_argument(
        "--fixed",
        help="also one trial at each of these rates, e.g. 1000,10000,50%% (a share of the "
        "sustained maximum from the ladder or --at); only absolute rates: no maximum",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the workers of the --fixed trials into DIR"
    )
    parser.add_argument("--no-native", action="store_true", help="skip the native tools")
    parser.add_argument("--port-base", type=int, default=default_port_base())
    args = parser.parse_args()
    brokers = args.brokers.split(",")
    want_max = args.fixed is None or "%" in args.fixed
    with isolated_runtime(
        args.port_base, brokers if not args.overhead else ["kafka", "rabbitmq", "redis", "postgres"]
    ) as runtime:
        if args.overhead:
            overhead(runtime, max(args.seconds, 30))
            return
        rows, fixed = [], []
        for size in [int(s) for s in args.sizes.split(",")]:
            native = {}
            if want_max and not args.no_native:
                native = native_tools.measure(runtime, brokers, size, args.seconds)
            for broker, client, rate in _plan(brokers, args.at):
                best = None
                if want_max:
                    if rate:
                        best = trial(runtime, broker, rate, size, args.seconds, client)
                    else:
                        best = ladder(runtime, broker, size, args.seconds, client)
                    rows.append((broker, size, best, native.get(broker)))
                for r in _fixed_rates(args.fixed, best["rate"] if best else None):
                    fixed.append(
                        trial(runtime, broker, r, size, args.seconds, client, args.profile)
                    )
                    print_fixed(fixed[-1:])
        if rows:
            print(
                "\n| broker | client | size | sustained msgs/s | e2e p99 ms | lab CPU % | "
                "lab CPU % per 10k msgs/s | broker CPU % | native tool msgs/s | lab / native |"
            )
            print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for broker, size, b, nat in rows:
            ratio = f"{b['rate'] / nat:.2f}" if nat else "-"
            print(
                f"| {broker} | {b['client']} | {size} | {b['rate']:,.0f} | {b['p99']:,.0f} | "
                f"{b['lab_cpu']:.0f} | {per10k(b['lab_cpu'], b['received']):.0f} | "
                f"{b['broker_cpu']:.0f} | {nat or 0:,.0f} | {ratio} |"
            )
        if fixed:
            print_fixed(fixed)


if __name__ == "__main__":
    main()
