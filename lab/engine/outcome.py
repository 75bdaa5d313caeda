"""A broker's part of the results, from its run: the summary (per subscriber in pub-sub),
the settings it ran with, and its losses said aloud."""

from typing import TYPE_CHECKING

from lab import brokers as registry
from lab.engine.subscription import Subscription
from lab.phases import Phase
from lab.results import BrokerResult, summary

if TYPE_CHECKING:
    from lab.engine.broker_run import BrokerRun


def result(run: "BrokerRun", series: list[dict], version: str | None) -> BrokerResult:
    """This broker's part of the run's results."""
    counts = run.counts()
    problems = [p for sub in run.subs for p in sub.ledger.problems]
    if counts.lost:
        problems.append(loss_problem(run, counts.lost))
    if not counts.adds_up():
        problems.append("the ledger does not add up")
    if run.phase is Phase.FAILED:
        problems.append("the broker's part of the run failed; see events")
    engine_counts = {
        "sent": run.totals.sent,  # fire-and-forget's ledger counts from these
        "failed": run.totals.failed,
        "errors": run.totals.errors,
        "poison_acked": run.totals.poison_acked,
        "max_backlog": run.max_backlog,
        "receive_calls": run.totals.receive_calls,
        "empty_receives": run.totals.empty_receives,
    }
    per_second = run.per_second()
    # The histograms themselves, so the summary can record their percentile ladder.
    publish, e2e = run.publish_summary, run.e2e_summary
    broker_summary = summary(
        counts, series, per_second, run.recipe, publish, e2e, engine_counts, run.ran()
    )
    streams: list[dict] = []
    if run.stream:
        ledgers = [sub.ledger for sub in run.subs]
        broker_summary["stream"], streams = run.stream.result(ledgers, run.t0_ns)
    if run.requests:
        broker_summary.update(run.requests.summary(run.totals.sent))
        if not broker_summary["requests_add_up"]:
            problems.append("the requests do not add up: sent != replied + timed out")
    if run.pub_sub:
        broker_summary["subscribers"] = {
            sub.name: _subscriber_summary(run, sub, series, per_second) for sub in run.subs
        }
        for sub, stream in zip(run.subs, streams, strict=False):
            broker_summary["subscribers"][sub.name]["stream"] = stream
    return BrokerResult(
        broker=run.broker,
        version=version,
        client=run.adapter.client_version(),
        settings=settings(run),
        summary=broker_summary,
        series=series,
        per_second=per_second,
        problems=problems,
        emulates=registry.get(run.broker).emulates,
        settings_read=list(run.settings_read),
    )


def settings(run: "BrokerRun") -> dict[str, str]:
    """The adapter's settings, with what the recipe's pattern and polling were here."""
    plugin = registry.get(run.broker)
    out = {**run.adapter.settings(), "poll": polling(run)}
    if run.recipe.forget:
        out["pattern"] = f"fire-and-forget: {plugin.fire_and_forget}"
    if run.requests:
        requests = run.recipe.requests
        window = "one request" if requests.mode == "sync" else f"{requests.window} requests"
        out["pattern"] = (
            f"request-reply, {requests.mode} ({window} outstanding per requester, "
            f"timeout {requests.timeout:g}s): {plugin.request_reply}"
        )
    return out


def polling(run: "BrokerRun") -> str:
    """How this broker's consumers asked for messages, in words."""
    consumers = run.recipe.consumers
    how = registry.get(run.broker).polling[consumers.poll]
    if consumers.poll == "short":
        return f"short, every {consumers.poll_interval:g}s: {how}"
    return f"long: {how}"


def _subscriber_summary(
    run: "BrokerRun", sub: Subscription, series: list[dict], per_second: dict
) -> dict:
    """The same fields as the broker's summary, for one subscription's consumers."""
    mine = dict(per_second)
    last = len(mine["processed"])
    mine["processed"] = [sub.processed_by_second.get(i, 0) for i in range(last)]
    t = sub.totals
    extra = {
        "sent": run.totals.sent,
        "failed": run.totals.failed,
        "errors": run.totals.errors,
        "receive_calls": t.receive_calls,
        "empty_receives": t.empty_receives,
    }
    s = summary(
        sub.counts(),
        series,
        mine,
        run.recipe,
        run.publish_summary,
        sub.e2e_summary,
        extra,
        run.ran(),
    )
    s["max_lag"] = sub.max_lag
    return s


def loss_problem(run: "BrokerRun", lost: int) -> str:
    """Lost acknowledged messages, said aloud: whether the durability setting predicted
    it, or the broker broke its promise (said louder)."""
    if run.recipe.forget:
        return (
            f"{lost:,} sent messages lost, as fire-and-forget expects: nobody waited "
            "for the broker to take them"
        )
    expected = run.adapter.losses_expected()
    if expected:
        return f"{lost:,} acknowledged messages lost, as durability {expected}"
    return (
        f"BROKEN PROMISE: {lost:,} acknowledged messages lost although durability "
        f"'{run.recipe.durability}' promises to keep every message the broker confirmed"
    )
