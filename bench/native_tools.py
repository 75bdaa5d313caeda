"""The brokers' own load generators, for the ratios in docs/performance.md.

    .venv/bin/python -m bench.native_tools [--size 100] [--seconds 10]

Producer-only throughput, one producer, each broker's durable settings, no chaos proxy:
Kafka's kafka-producer-perf-test (ProducerPerformance, from the assembled Kafka jars,
acks=all), RabbitMQ's PerfTest (publisher confirms, window 1000, persistent, classic
queue; fetched from Maven Central into the cache on first use), redis-benchmark (XADD,
pipelined 50 deep, appendfsync always), pgbench (INSERT 100 rows per transaction,
synchronous_commit on). bench/throughput.py prints these next to the lab's own figures.
"""

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from bench.common import isolated_runtime
from lab.brokers.postgres.native import _bindir
from lab.runtimes.native import NativeRuntime

TOOLS_POM = Path(__file__).parent / "tools" / "pom.xml"


def perftest_home(runtime: NativeRuntime) -> Path:
    version = re.search(r"<perftest.version>(.+?)<", TOOLS_POM.read_text()).group(1)
    home = runtime.settings.cache_dir / f"perf-test-{version}"
    if not (home / ".complete").exists():
        subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(TOOLS_POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={home / 'libs'}",
            ],
            check=True,
            capture_output=True,
        )
        (home / ".complete").write_text(version)
    return home


def kafka(runtime: NativeRuntime, size: int, seconds: float) -> float:
    from confluent_kafka.admin import AdminClient, NewTopic

    ep = runtime.endpoint("kafka")
    bootstrap = f"{ep.host}:{ep.port}"
    topic = f"bench-native-{size}-{time.monotonic_ns()}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the topic exists
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)
    records = int(seconds * 150_000)  # enough for about `seconds` at this machine's speed
    out = _java(
        runtime.brokers["kafka"].classpath,
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        "acks=all",
    )
    return float(re.findall(r"([\d.]+) records/sec", out)[-1])


def rabbitmq(runtime: NativeRuntime, size: int, seconds: float) -> float:
    ep = runtime.endpoint("rabbitmq")
    out = _java(
        str(perftest_home(runtime) / "libs" / "*"),
        "com.rabbitmq.perf.PerfTest",
        "--uri",
        ep.url,
        "-x",
        "1",
        "-y",
        "0",
        "-s",
        str(size),
        "-z",
        str(int(seconds)),
        "--confirm",
        "1000",
        "--flag",
        "persistent",
        "-u",
        "bench-native",
        "--auto-delete",
        "true",
    )
    return float(re.search(r"sending rate avg: ([\d.]+) msg/s", out).group(1))


def redis(runtime: NativeRuntime, size: int, seconds: float) -> float:
    ep = runtime.endpoint("redis")
    import redis as redis_py

    client = redis_py.Redis(host=ep.host, port=ep.port, password=ep.password)
    client.config_set("appendonly", "yes")
    client.config_set("appendfsync", "always")
    client.close()
    requests = int(seconds * 100_000)
    out = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            ep.host,
            "-p",
            str(ep.port),
            "-a",
            ep.password or "",
            "-c",
            "1",
            "-P",
            "50",
            "-n",
            str(requests),
            "-q",
            "XADD",
            "bench-native",
            "*",
            "d",
            "x" * size,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return float(re.findall(r"([\d.]+) requests per second", out)[-1])


def postgres(runtime: NativeRuntime, size: int, seconds: float) -> float:
    ep = runtime.endpoint("postgres")
    with psycopg.connect(ep.url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_native")
        conn.execute("CREATE TABLE bench_native (id bigserial PRIMARY KEY, payload bytea)")
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(
            "INSERT INTO bench_native (payload) "
            "SELECT convert_to(repeat('x', :size), 'UTF8') FROM generate_series(1, 100);\n"
        )
        script.flush()
        out = subprocess.run(
            [
                str(_bindir() / "pgbench"),
                "-n",
                "-c",
                "1",
                "-T",
                str(int(seconds)),
                "-D",
                f"size={size}",
                "-f",
                script.name,
                "-h",
                ep.host,
                "-p",
                str(ep.port),
                "-U",
                ep.username or "",
                ep.path,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
            env={"PGPASSWORD": ep.password or "", "PATH": "/usr/bin:/bin"},
        ).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1)) * 100


TOOLS = {
    "kafka": ("kafka-producer-perf-test, acks=all", kafka),
    "rabbitmq": ("PerfTest, confirms (window 1000), persistent", rabbitmq),
    "redis": ("redis-benchmark XADD -P 50, appendfsync always", redis),
    "postgres": ("pgbench INSERT 100 rows/transaction", postgres),
}


def _java(classpath: str, main: str, *args: str) -> str:
    done = subprocess.run(
        ["java", "-Xmx512m", "-cp", classpath, main, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{main} failed: {done.stderr[-500:] or done.stdout[-500:]}")
    return done.stdout


def measure(runtime: NativeRuntime, brokers: list[str], size: int, seconds: float) -> dict:
    return {b: TOOLS[b][1](runtime, size, seconds) for b in brokers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--brokers", default="kafka,rabbitmq,redis,postgres")
    parser.add_argument("--port-base", type=int, default=33000)
    args = parser.parse_args()
    brokers = args.brokers.split(",")
    with isolated_runtime(args.port_base, brokers) as runtime:
        for broker, rate in measure(runtime, brokers, args.size, args.seconds).items():
            print(f"| {broker} | {TOOLS[broker][0]} | {rate:,.0f} msgs/s |")


if __name__ == "__main__":
    main()
