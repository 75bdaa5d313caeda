"""From stream to features: a materialized view, windowed aggregates and triggers, kept by
the consumers in a real store, and checked against the truth the lab knows.

Every lab message is also an event: its key and value follow from (seed, producer, seq)
and its event time is the intended send time in the header, so no payload changes and
the engine knows what every view, window and trigger should be from what was acked.

    events.py    key and value of (seed, producer, seq)
    windows.py   tumbling and hopping windows, lateness by the run's clock
    view.py      the stores: Redis hashes or PostgreSQL tables, naive or deduplicated
    stage.py     the consumer side: one call per batch
    triggers.py  alerts to the run's alerts topic, or a user command, rate-limited
    acks.py      the producer side: the event time of every acked message, a resolved mark
    truth.py     what the view, windows and triggers should hold
    live.py      the windows compared while the run goes on, once they cannot change
    summary.py   the comparison (results JSON `stream`) and its rows
    subscription.py  one subscription's store and reports (pub-sub: one per subscriber)
    run.py       the engine side: provision, fold reports, live checks, read, tear down
    check.py     the [stream] section's rules that span fields
"""
