"""`lab capacity`'s flags. Every value is read as text and checked here, so a bad one is a
LabError (one line, exit 2) rather than argparse's usage dump."""

import argparse

from lab.capacity import units
from lab.capacity.model import Workload


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--users", default="1000", help="people using the system (default 1000)")
    p.add_argument(
        "--requests-per-user", default="10", help="requests each sends a day (default 10)"
    )
    p.add_argument("--hours", default="8-18", help="working hours, START-END (default 8-18)")
    p.add_argument(
        "--peak-share",
        help="share of the day's requests in the first hour, e.g. 0.55 or 55%% "
        "(default: spread evenly)",
    )
    p.add_argument("--request-size", default="1MB", help="bytes in per request (default 1MB)")
    p.add_argument("--response-size", default="10KB", help="bytes out per request (default 10KB)")
    p.add_argument("--server-rps", default="10", help="requests a second one server handles")
    p.add_argument("--servers", help="servers behind the proxy (default: what the peak needs)")
    p.add_argument("--workers", default="1", help="workers behind the queue (default 1)")
    p.add_argument("--cost-per-request", help="serverless price of one request")
    p.add_argument("--cost-per-server-hour", help="price of one server for an hour")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument(
        "--recipe",
        metavar="FILE",
        help="also write the day as a time-compressed recipe for `lab run`",
    )
    p.add_argument(
        "--seconds-per-hour", default="10", help="the recipe's seconds per hour (default 10)"
    )
    p.add_argument(
        "--rate-scale",
        help="the recipe's rates and capacity times this (default: 100 msgs/s per worker)",
    )
    p.add_argument("--message-size", default="256B", help="the recipe's message size")


def workload(args: argparse.Namespace) -> Workload:
    hours = units.hours("--hours", args.hours)
    share = units.share("--peak-share", args.peak_share) if args.peak_share else None
    return Workload(
        users=units.whole("--users", args.users),
        requests_per_user=units.number("--requests-per-user", args.requests_per_user),
        hours=hours,
        peak_share=share,
        request_bytes=units.size("--request-size", args.request_size),
        response_bytes=units.size("--response-size", args.response_size),
        server_rps=units.number("--server-rps", args.server_rps),
        servers=units.whole("--servers", args.servers) if args.servers else None,
        workers=units.whole("--workers", args.workers),
        cost_per_request=_cost("--cost-per-request", args.cost_per_request),
        cost_per_server_hour=_cost("--cost-per-server-hour", args.cost_per_server_hour),
    )


def recipe_options(args: argparse.Namespace) -> dict:
    return {
        "seconds_per_hour": units.number("--seconds-per-hour", args.seconds_per_hour),
        "rate_scale": units.number("--rate-scale", args.rate_scale) if args.rate_scale else None,
        "message_bytes": units.size("--message-size", args.message_size),
    }


def _cost(flag: str, text: str | None) -> float | None:
    return None if text is None else units.number(flag, text, 0.0, above=False)
