"""The `lab` command line: its sub-commands and flags."""

import argparse
import os

from lab import __version__
from lab import brokers as registry
from lab.cli import report
from lab.errors import LabError
from lab.faults import ACTIONS
from lab.runtimes import RUNTIME_CHOICES


class Parser(argparse.ArgumentParser):
    """Bad flags are a LabError (one line, exit 2) rather than argparse's usage dump; its
    sub-commands' parsers are of this class too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("lab").strip()
        where = f"lab {command} --help" if command else "lab --help"
        raise LabError(f"{command + ': ' if command else ''}{message} (see {where})")


def parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="lab",
        description="Run the same workload through "
        + ", ".join(p.display for p in registry.plugins().values())
        + ", side by side.",
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
        + ", ".join(p.url_example for p in registry.plugins().values()),
    )
    parser.add_argument(
        "--external-config",
        metavar="FILE",
        help="a TOML file whose [brokers] table maps brokers to URLs "
        "(default: LAB_EXTERNAL_CONFIG)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    brokers_help = f"brokers ({', '.join(registry.names())})"
    default_set = ", ".join(registry.default_names())
    p = sub.add_parser("up", help="start brokers and wait until they answer")
    p.add_argument(
        "brokers", nargs="*", metavar="BROKER", help=f"{brokers_help}; default: {default_set}"
    )
    p = sub.add_parser("down", help="stop brokers; nothing the lab started is left running")
    p.add_argument("brokers", nargs="*", metavar="BROKER", help=f"{brokers_help}; default: all")
    p = sub.add_parser("status", help="state, endpoint, pid, CPU, memory and version")
    p.add_argument("brokers", nargs="*", metavar="BROKER", help=f"{brokers_help}; default: all")
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
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any recipe field (repeatable), e.g. consumers.poll=long or "
        'pattern=pub-sub; VALUE is read as TOML (30, "30s", true) or else as text',
    )
    p.add_argument("--out", default="results", help="directory for results (default: results)")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="'TIME ACTION [BROKER] [k=v]'",
        help="inject a fault (repeatable), e.g. '30s kill BROKER' or '10s latency BROKER ms=200'; "
        "TIME and peak's for= are durations like --duration's (90, 1.5m, 500ms); "
        f"actions: {', '.join(ACTIONS)}",
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
    report.add_parsers(sub)
    return parser
