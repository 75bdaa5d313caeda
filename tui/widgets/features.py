"""A broker column's features panel, for runs with a [stream] stage: what the broker's
deliveries did to the features a model would read.

    features · redis · naive
    view error 12  (over-count so far)
    late 0   windows 237 exact / 0 wrong
    triggers 9 fired / 9 expected
    fresh p50 12 ms  p99 40 ms

While the run goes on the view error is the over-count so far (redeliveries a naive view
counted again); once it ends it is the store compared with the truth, and the windows
and trigger figures (missed, spurious, duplicated) appear.
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
    windows = Text.assemble(("late ", "dim"), Text(f"{f.late:,}", style="yellow" if f.late else ""))
    if f.windows_exact is not None:
        windows.append_text(
            Text.assemble(
                ("   windows ", "dim"),
                f"{f.windows_exact:,}",
                (" exact / ", "dim"),
                _bad(f.windows_wrong),
                (" wrong", "dim"),
            )
        )
    triggers = Text.assemble(("triggers ", "dim"), f"{f.fired:,}", (" fired", "dim"))
    if f.expected is not None:
        triggers.append_text(Text.assemble((" / ", "dim"), f"{f.expected:,}", (" expected", "dim")))
        wrong = [(n, v) for n, v in (("missed", f.missed), ("spurious", f.spurious)) if v]
        wrong += [("dup", f.duplicated)] if f.duplicated else []
        for name, value in wrong:
            triggers.append(f"  {name} {value:,}", style="bold yellow")
    if f.suppressed:
        triggers.append(f"  held {f.suppressed:,}", style="dim")
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
    return Text("\n").join([head, view, windows, triggers, fresh])
