"""`lab report`, `lab export` and `lab capacity`: their flags and what they do.

Every bad input is a LabError (one line, exit 2); flag values are checked by
lab.capacity.flags.
"""

import argparse
import json
import sys
from pathlib import Path

from lab.errors import LabError
from lab.results import RunResult

COMMANDS = ("report", "export", "capacity")


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from lab.capacity import flags

    p = sub.add_parser("report", help="compare runs in one HTML file with charts")
    p.add_argument("results", nargs="+", metavar="RUN.json", help="results files of `lab run`")
    p.add_argument("-o", "--out", default="report.html", help="where (default report.html)")

    p = sub.add_parser("export", help="a run's series and summary as CSV (or HTML)")
    p.add_argument("result", metavar="RUN.json", help="a results file of `lab run`")
    p.add_argument("--csv", metavar="DIR", help="write <run-id>-series.csv and more into DIR")
    p.add_argument("--html", metavar="FILE", help="write the HTML report of this run")

    p = sub.add_parser(
        "capacity",
        help="size servers, a queue or serverless for users in working hours",
        description="The capacity model: users' requests in working hours, a share of "
        "them in the first hour, servers of a fixed rate. Network figures count 10 bits "
        "per byte (protocol overhead); 1 MB = 10^6 bytes.",
    )
    flags.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.command == "report":
        return _report(args)
    if args.command == "export":
        return _export(args)
    if args.command == "capacity":
        return _capacity(args)
    raise LabError(f"not a report command: {args.command}")


def _report(args: argparse.Namespace) -> int:
    from lab.report import write_report

    out = write_report([Path(p) for p in args.results], Path(args.out))
    print(out)
    return 0


def _export(args: argparse.Namespace) -> int:
    from lab.export.csv import write_csv
    from lab.report import write_report

    if not args.csv and not args.html:
        raise LabError("say what to write: --csv DIR and/or --html FILE")
    result = RunResult.load(Path(args.result))
    paths = write_csv(result, Path(args.csv)) if args.csv else []
    if args.html:
        paths.append(write_report([Path(args.result)], Path(args.html)))
    print("\n".join(str(p) for p in paths))
    return 0


def _capacity(args: argparse.Namespace) -> int:
    from lab.capacity import flags, plan
    from lab.capacity.recipe import write_recipe
    from lab.capacity.table import render

    workload = flags.workload(args)
    options = flags.recipe_options(args)
    result = plan(workload)
    # The recipe first: a path that cannot be written fails before anything is printed.
    path = write_recipe(workload, Path(args.recipe), **options) if args.recipe else None
    print(json.dumps(result.to_dict(), indent=2) if args.json else render(result))
    if path:
        where = sys.stderr if args.json else sys.stdout  # keep --json's stdout pure JSON
        print(f"\nrecipe written: {path} (run it: lab run {path})", file=where)
    return 0
