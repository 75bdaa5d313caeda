"""A broker column's features panel, for runs with a [stream] stage: what the broker's
deliveries did to the features a model would read.

    features · redis · naive
    view error 12  (over-count so far)
    late 0   windows 237 exact / 0 wrong  to 35 s
    triggers 11 fired · 9 / 9 expected to 35 s
    alert p50 8 ms  p99 30 ms
    fresh p50 12 ms  p99 40 ms

While the run goes on the view error is the over-count so far (redeliveries a naive view
counted again), and the windows and the triggers are compared with the truth for the
windows that closed and can change no more ("to 35 s": those ending by then); once the
run ends, everything is the store compared with the truth. "alert" is the trigger
latency (the event that crossed the threshold to its alert acked or command started):
over the last 2 s live, the whole run at the end. In pub-sub the figures are the sum of
the subscribers' (each has a store of its own).
"""

from rich.text import Text

from lab.app.format import millis as ms
from lab.stream.figures import StreamFigures


def _bad(value: int | None) -> Text:
    if value is None:
        return Text("-")
    return Text(f"{value:,}", style="bold yellow" if value else "green")


def features_text(f: StreamFigures) -> Text:
    mode = "dedupe" if f.dedupe else "naive"
    head = Text.assemble(("features", "bold"), (f" · {f.store} · {mode}", "dim"))
    view = Text.assemble(("view error ", "dim"), _bad(f.view_error))
    if not f.final and f.view_error is not None:
        view.append("  (over-count so far)", style="dim")
    elif f.final:
        view.append("  vs truth", style="dim")
    so_far = "" if f.final or f.windows_to_s is None else f" to {f.windows_to_s:g} s"
    windows = Text.assemble(("late ", "dim"), Text(f"{f.late:,}", style="yellow" if f.late else ""))
    if f.windows_exact is not None:
        windows.append_text(
            Text.assemble(
                ("   windows ", "dim"),
                f"{f.windows_exact:,}",
                (" exact / ", "dim"),
                _bad(f.windows_wrong),
                (" wrong", "dim"),
                (so_far, "dim"),
            )
        )
    triggers = Text.assemble(("triggers ", "dim"), f"{f.fired:,}", (" fired", "dim"))
    if f.expected is not None:
        # Live, the fired count runs ahead of the windows compared so far.
        sep = " / " if f.final else " · "
        triggers.append_text(
            Text.assemble((sep, "dim"), f"{f.expected:,}", (" expected", "dim"), (so_far, "dim"))
        )
        wrong = [(n, v) for n, v in (("missed", f.missed), ("spurious", f.spurious)) if v]
        wrong += [("dup", f.duplicated)] if f.duplicated else []
        for name, value in wrong:
            triggers.append(f"  {name} {value:,}", style="bold yellow")
    if f.suppressed:
        triggers.append(f"  held {f.suppressed:,}", style="dim")
    alert = Text.assemble(("alert p50 ", "dim"), "-", ("  p99 ", "dim"), "-")
    if f.trigger_p50_ms is not None:
        alert = Text.assemble(
            ("alert p50 ", "dim"),
            ms(f.trigger_p50_ms),
            ("  p99 ", "dim"),
            ms(f.trigger_p99_ms),
            (" ms", "dim"),
        )
    if f.freshness_p50_ms is None:
        fresh = Text.assemble(("fresh p50 ", "dim"), "-", ("  p99 ", "dim"), "-")
    else:
        fresh = Text.assemble(
            ("fresh p50 ", "dim"),
            ms(f.freshness_p50_ms),
            ("  p99 ", "dim"),
            ms(f.freshness_p99_ms),
            (" ms", "dim"),
        )
    lines = [head, view, windows, triggers, fresh]
    if f.fired or f.expected is not None or f.trigger_p50_ms is not None:
        lines.insert(4, alert)  # runs with triggers only
    return Text("\n").join(lines)
