"""A run as a Markdown summary: one column per broker, the ledger and the figures that matter."""

from lab.results import RunResult, alarming, columns, summary_rows


def to_markdown(result: RunResult) -> str:
    recipe = result.recipe
    brokers = list(result.brokers.values())
    shown = columns(result)
    env = result.environment
    lines = [
        f"# Broker Lab run {result.run_id}",
        "",
        f"Recipe **{recipe['name']}** ({recipe['rate']['profile']}, {recipe['rate']['rate']:g} "
        f"msgs/s, {recipe['message']['size']} B, {recipe['duration']:g} s, durability "
        f"{recipe['durability']}), {result.mode} mode, started {result.started_at}, "
        f"{env['runtime']} runtime on {env['cpu_count']} CPUs.",
        "",
        "| | " + " | ".join(name for name, _ in shown) + " |",
        "|---|" + "---:|" * len(shown),
    ]
    for label, fmt in summary_rows(result):
        cells = [f"**{fmt(s)}**" if alarming(label, s) else fmt(s) for _, s in shown]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "## Versions and settings", ""]
    for b in brokers:
        settings = ", ".join(f"{k}={v}" for k, v in b.settings.items())
        emulator = f" (an emulator of {b.emulates})" if b.emulates else ""
        lines.append(f"- **{b.broker}** {b.version or '?'}{emulator} with {b.client}: {settings}")
    faults = [e for e in result.events if e.kind in ("fault", "command")]
    if faults:
        lines += ["", "## Faults and commands", ""]
        lines += [f"- {e.t:.1f} s: {e.message}" for e in faults]
    if result.problems:
        lines += ["", "## Problems", ""]
        lines += [f"- {p}" for p in result.problems]
    return "\n".join(lines) + "\n"
