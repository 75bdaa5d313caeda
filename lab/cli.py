"""The `lab` command. Bad input ends in one line on stderr and exit 2, never a traceback."""

import argparse
import json
import os
import sys
from collections.abc import Sequence

from lab import BROKERS, __version__
from lab.brokers.base import BrokerError
from lab.errors import LabError
from lab.runtimes import RUNTIME_CHOICES, BrokerStatus, check_brokers, get_runtime

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lab",
        description="Run the same workload through Kafka, RabbitMQ, Redis and PostgreSQL.",
    )
    parser.add_argument("--version", action="version", version=f"broker-lab {__version__}")
    parser.add_argument(
        "--runtime",
        choices=RUNTIME_CHOICES,
        default=os.environ.get("LAB_RUNTIME", "auto"),
        help="how brokers are run; auto (the default, or LAB_RUNTIME): external when broker "
        "URLs are given, else docker when a Docker engine answers, else native",
    )
    parser.add_argument(
        "--broker-url",
        action="append",
        default=[],
        metavar="[BROKER=]URL",
        help="a broker someone else runs, for the external runtime (repeatable), e.g. "
        "kafka://HOST:9092, amqp://USER:PASS@HOST/VHOST, redis://:PASS@HOST:6379/0, "
        "postgresql://USER:PASS@HOST/DB",
    )
    parser.add_argument(
        "--external-config",
        metavar="FILE",
        help="a TOML file whose [brokers] table maps brokers to URLs "
        "(default: LAB_EXTERNAL_CONFIG)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    brokers_help = f"brokers ({', '.join(BROKERS)}); default: all"
    p = sub.add_parser("up", help="start brokers and wait until they answer")
    p.add_argument("brokers", nargs="*", metavar="BROKER", help=brokers_help)
    p = sub.add_parser("down", help="stop brokers; nothing the lab started is left running")
    p.add_argument("brokers", nargs="*", metavar="BROKER", help=brokers_help)
    p = sub.add_parser("status", help="state, endpoint, pid, CPU, memory and version")
    p.add_argument("brokers", nargs="*", metavar="BROKER", help=brokers_help)
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p = sub.add_parser("logs", help="the last lines of a broker's log")
    p.add_argument("broker", metavar="BROKER")
    p.add_argument("-n", "--lines", type=int, default=100)
    sub.add_parser("doctor", help="what is installed, what is missing, how to fix it")

    p = sub.add_parser("dlq", help="browse or redrive a run's dead letters")
    p.add_argument("broker", metavar="BROKER")
    p.add_argument("--run", help="run id (default: the latest run that kept dead letters)")
    p.add_argument("--limit", type=int, default=20, help="how many to list (default 20)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--redrive", action="store_true", help="send them back to the queue")
    action.add_argument("--purge", action="store_true", help="delete the run's queues")

    p = sub.add_parser("tui", help="the dashboard: pick brokers and a recipe, watch, break, export")
    p.add_argument("--replay", metavar="RUN.json", help="play a recorded run back (no brokers)")
    p.add_argument("--out", default="results", help="directory for results (default: results)")
    p.add_argument(
        "--keep-brokers",
        action="store_true",
        help="leave brokers the dashboard started running afterwards",
    )

    p = sub.add_parser("run", help="run a recipe through the brokers, headless")
    p.add_argument("recipe", help="a recipe file, or the name of a shipped one (quickstart)")
    p.add_argument("--brokers", help="comma-separated; default: the recipe's brokers")
    p.add_argument("--mode", choices=("parallel", "sequential"), default="parallel")
    p.add_argument("--duration", help="override the recipe's duration (e.g. 30s)")
    p.add_argument("--rate", type=float, help="override the recipe's rate (msgs/s)")
    p.add_argument("--out", default="results", help="directory for results (default: results)")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="'TIME ACTION [BROKER] [k=v]'",
        help="inject a fault, e.g. '30s kill kafka' or '10s latency redis ms=200' (repeatable)",
    )
    p.add_argument(
        "--no-proxy",
        action="store_true",
        help="connect straight to the brokers, not through the chaos proxy (benchmarks)",
    )
    p.add_argument(
        "--keep-brokers",
        action="store_true",
        help="leave brokers this run started running afterwards",
    )
    return parser


def _print_progress(broker: str, message: str) -> None:
    print(f"{broker:>9}: {message}", file=sys.stderr, flush=True)


def _mib(n: int | None) -> str:
    return f"{n / 2**20:.0f} MiB" if n is not None else "-"


def render_status(rows: Sequence[BrokerStatus]) -> str:
    header = ("BROKER", "STATE", "ENDPOINT", "PID", "CPU", "RSS", "VERSION", "DETAIL")
    table = [header] + [
        (
            r.broker,
            str(r.state),
            r.endpoint or "-",
            str(r.pid or "-"),
            f"{r.cpu_percent:.1f}%" if r.cpu_percent is not None else "-",
            _mib(r.rss_bytes),
            r.version or "-",
            r.detail,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "doctor":
        from lab.doctor import render, run_checks
        from lab.settings import Settings

        checks = run_checks(Settings.from_env())
        print(render(checks))
        return 0 if all(c.ok for c in checks) else 1

    if args.command == "tui":
        from tui.main import run_tui

        return run_tui(
            lambda: get_runtime(args.runtime, None, args.broker_url, args.external_config),
            args.replay,
            args.out,
            args.keep_brokers,
        )
    runtime = get_runtime(args.runtime, None, args.broker_url, args.external_config)
    if args.command == "up":
        rows = runtime.up(args.brokers, progress=_print_progress)
        print(render_status(rows))
    elif args.command == "down":
        runtime.down(args.brokers)
    elif args.command == "status":
        rows = runtime.status(args.brokers)
        if args.json:
            print(json.dumps([r.to_dict() for r in rows], indent=2))
        else:
            print(render_status(rows))
    elif args.command == "logs":
        print(runtime.logs(args.broker, args.lines))
    elif args.command == "dlq":
        from lab.dlq_command import dlq

        (broker,) = check_brokers([args.broker])
        return dlq(runtime, broker, args.run, args.limit, args.redrive, args.purge)
    elif args.command == "run":
        from pathlib import Path

        from lab.headless import run as run_headless

        overrides: dict = {}
        if args.duration:
            overrides["duration"] = args.duration
        if args.rate is not None:
            overrides["rate.rate"] = args.rate
        if args.no_proxy:
            overrides["chaos_proxy"] = False
        brokers = [b.strip() for b in args.brokers.split(",") if b.strip()] if args.brokers else []
        from lab.faults import parse_fault

        faults = [parse_fault(text) for text in args.fault]
        return run_headless(
            runtime,
            args.recipe,
            brokers,
            args.mode,
            Path(args.out),
            overrides,
            args.keep_brokers,
            faults,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokerError as exc:
        print(
            f"lab: error: a broker did not answer: {exc} (is it running? lab status)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "lab: interrupted; brokers this command was starting have been stopped", file=sys.stderr
        )
        return EXIT_INTERRUPTED
