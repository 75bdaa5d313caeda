"""The lecture's capacity model: users, their requests in working hours, a server that
handles a fixed number of requests a second, and what a peak in the first hour does.

    day = Workload(users=10_000, requests_per_user=10, hours=(8, 18), peak_share=0.55)
    plan(day).to_dict()["queue"]["backlog_max"]   # about 19,000

Network figures count 10 bits per byte (8 for the byte, 2 for the protocol's overhead), as
the lecture does, and sizes are decimal (1 MB = 10**6 bytes).
"""

import math
from dataclasses import dataclass, field

from lab.capacity import fluid, mmc

BITS_PER_BYTE = 10
DAY_S = 24 * 3600
HOUR_S = 3600


@dataclass(frozen=True)
class Workload:
    users: int = 1000
    requests_per_user: float = 10.0
    hours: tuple[int, int] = (8, 18)
    # Share of the day's requests in the first working hour; None spreads them evenly.
    peak_share: float | None = None
    request_bytes: int = 10**6
    response_bytes: int = 10**4
    server_rps: float = 10.0
    servers: int | None = None  # behind a proxy; None: as many as the peak needs
    workers: int = 1  # behind a queue, each at server_rps
    cost_per_request: float | None = None  # serverless
    cost_per_server_hour: float | None = None

    @property
    def working_hours(self) -> int:
        return self.hours[1] - self.hours[0]

    @property
    def requests_per_day(self) -> float:
        return self.users * self.requests_per_user

    def hourly(self) -> list[float]:
        """Requests in each working hour, the first hour first."""
        n, day = self.working_hours, self.requests_per_day
        if self.peak_share is None or n == 1:
            return [day / n] * n
        rest = day * (1 - self.peak_share) / (n - 1)
        return [day * self.peak_share] + [rest] * (n - 1)

    def segments(self) -> list[fluid.Segment]:
        """The whole day from the start of work: the working hours, then the quiet ones."""
        quiet = DAY_S - self.working_hours * HOUR_S
        return [(HOUR_S, r / HOUR_S) for r in self.hourly()] + [(quiet, 0.0)]


@dataclass(frozen=True)
class Plan:
    workload: Workload
    mean_rps: float  # over the working hours
    peak_rps: float  # in the busiest hour
    servers_needed: int
    utilization: float  # of the servers needed for the peak, over 24 h
    servers: dict
    queue: dict
    serverless: dict
    backlog: fluid.Backlog | None = field(repr=False)  # None when the workers never catch up

    @property
    def mbit_in_mean(self) -> float:
        return mbit(self.mean_rps, self.workload.request_bytes)

    @property
    def mbit_in_peak(self) -> float:
        return mbit(self.peak_rps, self.workload.request_bytes)

    @property
    def mbit_out_mean(self) -> float:
        return mbit(self.mean_rps, self.workload.response_bytes)

    @property
    def mbit_out_peak(self) -> float:
        return mbit(self.peak_rps, self.workload.response_bytes)

    def to_dict(self) -> dict:
        """`lab capacity --json`: these keys, by these names, are what scripts rely on."""
        return {
            "mean_rps": self.mean_rps,
            "peak_rps": self.peak_rps,
            "mbit_in_mean": self.mbit_in_mean,
            "mbit_in_peak": self.mbit_in_peak,
            "servers_needed": self.servers_needed,
            "utilization": self.utilization,
            "servers": self.servers,
            "queue": self.queue,
            "serverless": self.serverless,
        }


def mbit(rps: float, size_bytes: int) -> float:
    return rps * size_bytes * BITS_PER_BYTE / 1e6


def plan(w: Workload) -> Plan:
    hourly = w.hourly()
    day = w.requests_per_day
    mean_rps = day / (w.working_hours * HOUR_S)
    peak_rps = max(hourly) / HOUR_S
    # A hair under a whole number of servers' worth must not ask for one more server.
    needed = max(1, math.ceil(peak_rps / w.server_rps - 1e-9))
    backlog = _backlog(w)
    return Plan(
        workload=w,
        mean_rps=mean_rps,
        peak_rps=peak_rps,
        servers_needed=needed,
        utilization=day / (needed * w.server_rps * DAY_S),
        servers=_servers(w, w.servers or needed, peak_rps),
        queue=_queue(w, hourly, backlog),
        serverless=_serverless(w, needed),
        backlog=backlog,
    )


def _servers(w: Workload, count: int, peak_rps: float) -> dict:
    capacity = count * w.server_rps
    return {
        "count": count,
        "capacity_rps": capacity,
        "capacity_per_day": capacity * DAY_S,
        "utilization": w.requests_per_day / (capacity * DAY_S),
        "peak_utilization": peak_rps / capacity,
        "handles_peak": peak_rps <= capacity * (1 + 1e-9),
        # Behind a proxy the fleet is one M/M/c queue: the mean wait in the busiest hour.
        "peak_wait_s": mmc.mean_wait_s(peak_rps, w.server_rps, count),
    }


def _backlog(w: Workload) -> fluid.Backlog | None:
    capacity = w.workers * w.server_rps
    if w.requests_per_day >= capacity * DAY_S:
        return None  # more arrives each day than the workers can do: it only grows
    # Starting empty is the steady state: with spare capacity over 24 h the queue must
    # empty within one day (busy all day would serve more than arrived), before tomorrow.
    return fluid.backlog(w.segments(), capacity, drain_tail=False)


def _queue(w: Workload, hourly: list[float], b: fluid.Backlog | None) -> dict:
    steady = [
        mmc.mean_wait_s(r / HOUR_S, w.server_rps, w.workers)
        for r in hourly
        if r / HOUR_S < w.workers * w.server_rps
    ]
    steady_wait = max((s for s in steady if s is not None), default=None)
    if b is None:
        return {
            "workers": w.workers,
            "capacity_rps": w.workers * w.server_rps,
            "backlog_max": None,
            "max_wait_s": None,
            "drained_after_s": None,
            "steady_wait_s": steady_wait,
        }
    # The longest wait: the last request of the peak behind the fluid backlog, or, where
    # the workers always keep up, chance's mean wait in the busiest hour.
    max_wait = b.max_wait_s if b.peak > 0 else (steady_wait or 0.0)
    return {
        "workers": w.workers,
        "capacity_rps": w.workers * w.server_rps,
        "backlog_max": b.peak,
        "max_wait_s": max_wait,
        "drained_after_s": b.drained_after_s,
        "steady_wait_s": steady_wait,
    }


def _serverless(w: Workload, servers: int) -> dict:
    """A function per request scales with the traffic; servers are paid for all day."""
    per_request = w.cost_per_request
    per_hour = w.cost_per_server_hour
    serverless_day = w.requests_per_day * per_request if per_request is not None else None
    servers_day = servers * 24 * per_hour if per_hour is not None else None
    cheaper = None
    if serverless_day is not None and servers_day is not None:
        cheaper = "serverless" if serverless_day < servers_day else "servers"
    break_even = None
    if per_request and servers_day is not None:
        break_even = servers_day / per_request
    return {
        "requests_per_day": w.requests_per_day,
        "cost_per_day": serverless_day,
        "servers_cost_per_day": servers_day,
        "break_even_requests_per_day": break_even,
        "cheaper": cheaper,
    }
