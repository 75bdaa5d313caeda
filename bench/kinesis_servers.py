"""kinesalite or kinesis-local (kinesis-mock's Node.js build) as the lab's `kinesis`: the
figures issue 12 asked the choice to be made by.

Each server runs alone on 127.0.0.1 with a fresh data dir, driven by the lab's own boto3
client: the time until it answers, CreateStream (4 shards) until ACTIVE, PutRecords of 500
records of 100 B from one client for `--seconds`, every record read back with GetRecords,
and the server's RSS and CPU seconds. What survives a SIGKILL is said from each server's
documented storage, not measured here (kinesalite: LevelDB on disk; kinesis-mock: memory,
written to a JSON file every 5 s when persistence is on).

    .venv/bin/python -m bench.kinesis_servers [--seconds 10] [--port 27567]

kinesis-local is installed by npm into the lab's cache dir for this bench only; the lab
does not ship it.
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from lab.brokers.kinesis.client import make_client
from lab.brokers.kinesis.native import SERVE_JS, kinesalite_home
from lab.endpoints import Endpoint
from lab.settings import Settings

KINESIS_LOCAL = "kinesis-local@0.6.2"
RECORD = b"x" * 100
BATCH = 500


def kinesis_local_main(cache: Path) -> Path:
    home = cache / "npm" / KINESIS_LOCAL.replace("@", "-")
    main = home / "node_modules" / "kinesis-local" / "main.js"
    if not main.exists():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(home), KINESIS_LOCAL],
            check=True,
            capture_output=True,
        )
    return main


def start(server: str, port: int, data: Path, cache: Path) -> subprocess.Popen:
    if server == "kinesalite":
        module = kinesalite_home(cache) / "node_modules" / "kinesalite"
        config = data / "config.json"
        options = {"path": str(data / "db"), "createStreamMs": 0, "deleteStreamMs": 0}
        served = {"module": str(module), "port": port, "version": "bench", "options": options}
        config.write_text(json.dumps(served))
        serve = data / "serve.js"
        serve.write_text(SERVE_JS)
        args = ["node", str(serve), str(config)]
        env = os.environ
    else:
        main = kinesis_local_main(cache)
        args = ["node", str(main)]
        data = main.parent  # it reads its server.json (TLS key) from the working dir
        env = os.environ | {
            "KINESIS_MOCK_PLAIN_PORT": str(port),
            "KINESIS_MOCK_TLS_PORT": str(port + 1),
            "CREATE_STREAM_DURATION": "0ms",
            "LOG_LEVEL": "ERROR",
        }
    return subprocess.Popen(
        args, cwd=data, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )


def measure(server: str, port: int, seconds: float, cache: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{server}-") as tmp:
        started = time.monotonic()
        proc = start(server, port, Path(tmp), cache)
        try:
            client = make_client(Endpoint("kinesis", "kinesis", "127.0.0.1", port))
            while True:
                try:
                    client.list_streams()
                    break
                except Exception:
                    if proc.poll() is not None or time.monotonic() - started > 60:
                        raise RuntimeError(f"{server} did not answer") from None
                    time.sleep(0.05)
            answered = time.monotonic() - started
            t = time.monotonic()
            client.create_stream(StreamName="bench", ShardCount=4)
            while (
                client.describe_stream_summary(StreamName="bench")["StreamDescriptionSummary"][
                    "StreamStatus"
                ]
                != "ACTIVE"
            ):
                time.sleep(0.02)
            active = time.monotonic() - t
            ps = psutil.Process(proc.pid)
            cpu0 = sum(ps.cpu_times()[:2])
            put, t, n = 0, time.monotonic(), 0
            while time.monotonic() - t < seconds:
                records = [{"Data": RECORD, "PartitionKey": str(n + i)} for i in range(BATCH)]
                answer = client.put_records(StreamName="bench", Records=records)
                put += BATCH - answer["FailedRecordCount"]
                n += BATCH
            put_s = time.monotonic() - t
            t, got = time.monotonic(), 0
            shards = client.list_shards(StreamName="bench")["Shards"]
            for shard in shards:
                it = client.get_shard_iterator(
                    StreamName="bench", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
                while it:
                    page = client.get_records(ShardIterator=it, Limit=10_000)
                    got += len(page["Records"])
                    if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                        break
                    it = page.get("NextShardIterator")
            get_s = time.monotonic() - t
            cpu = sum(ps.cpu_times()[:2]) - cpu0
            rss = ps.memory_info().rss
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {
        "answers after s": answered,
        "stream ACTIVE after s": active,
        "put records/s": put / put_s,
        "read back records/s": got / get_s,
        "read back complete": float(got == put),
        "server CPU us per record": cpu / (put + got) * 1e6,
        "server RSS MiB": rss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=27567)
    args = parser.parse_args()
    cache = Settings.from_env().cache_dir
    results = {
        s: measure(s, args.port, args.seconds, cache) for s in ("kinesalite", "kinesis-local")
    }
    print(f"{'':28} {'kinesalite':>12} {'kinesis-local':>14}")
    for key in results["kinesalite"]:
        a, b = results["kinesalite"][key], results["kinesis-local"][key]
        print(f"{key:28} {a:12,.2f} {b:14,.2f}")


if __name__ == "__main__":
    main()
