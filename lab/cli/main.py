"""The `lab` command. Bad input ends in one line on stderr and exit 2, never a traceback."""

import json
import sys
from collections.abc import Sequence

from lab import brokers as registry
from lab.brokers.contract import BrokerError
from lab.cli import report
from lab.cli.parser import parser
from lab.cli.status import render_status
from lab.errors import LabError
from lab.runtimes import get_runtime

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _print_progress(broker: str, message: str) -> None:
    print(f"{broker:>9}: {message}", file=sys.stderr, flush=True)


def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "doctor":
        from lab.app.doctor import render, run_checks
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
    if args.command in report.COMMANDS:
        return report.run(args)
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
        from lab.cli.dlq import dlq

        broker = registry.get(args.broker).name
        return dlq(runtime, broker, args.run, args.limit, args.redrive, args.purge, _print_progress)
    elif args.command == "run":
        from pathlib import Path

        from lab.cli.run import run as run_headless
        from lab.recipes.parse import recipe_setting

        overrides: dict = {}
        if args.duration is not None:
            overrides["duration"] = ("--duration", args.duration)
        if args.rate is not None:
            overrides["rate.rate"] = ("--rate", args.rate)
        if args.no_proxy:
            overrides["chaos_proxy"] = ("--no-proxy", False)
        for text in args.set:
            dotted, value = recipe_setting(text)
            overrides[dotted] = (f"--set {dotted}", value)
        brokers = []
        if args.brokers is not None:
            brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
            if not brokers:
                raise LabError(f"--brokers: name at least one, from {', '.join(registry.names())}")
            registry.check(brokers)
        from lab.faults import parse_fault

        faults = [(text, *parse_fault(text)) for text in args.fault]
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
