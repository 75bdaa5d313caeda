"""What a results file must hold to be read back (replayed, reported, exported): a JSON
Schema, checked in one place (RunResult.load), so a file edited by hand or cut short is
one line naming what is wrong, never a KeyError deep in a chart.

Fields that later versions of the lab added are optional, so older files still load;
everything a reader of results uses is required.
"""

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from lab.phases import Phase

COUNT = {"type": "integer", "minimum": 0}
NUMBER = {"type": "number"}
MAYBE_NUMBER = {"type": ["number", "null"]}
TEXT = {"type": "string"}
MAYBE_TEXT = {"type": ["string", "null"]}


def obj(required: dict, optional: dict | None = None, closed: bool = False) -> dict:
    """An object with these required and optional properties; `closed`: no others (a
    misspelt field is then a mistake, not an extension)."""
    schema = {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


LATENCY = obj(
    {"p50": NUMBER, "p95": NUMBER, "p99": NUMBER, "max": NUMBER, "count": COUNT},
    {"percentiles": {"type": "array", "items": {"type": "array", "items": NUMBER}}},
)
LEDGER = ("produced", "acked", "delivered", "duplicates", "dead_lettered")
LEDGER += ("retention_dropped", "in_flight", "lost")
MAYBE_COUNT = {"type": ["integer", "null"]}
MAYBE = {"type": ["object", "null"]}  # merged into an object's schema: or null
TRIGGERS = ("fired", "expected", "missed", "spurious", "duplicated")
REQUESTS = ("replied", "timed_out", "late_replies", "duplicate_replies", "held_back")
P50_P99 = obj({"p50": MAYBE_NUMBER, "p99": MAYBE_NUMBER}, {"count": COUNT})
# A broker's [stream] stage compared with the truth (lab/stream/summary.py). Parts the
# recipe left off are null.
STREAM = obj(
    {
        "view_error": MAYBE_COUNT,
        "windows": obj(dict.fromkeys(("exact", "wrong", "late"), COUNT)) | MAYBE,
        "triggers": obj(dict.fromkeys(TRIGGERS, COUNT), {"latency_ms": P50_P99}) | MAYBE,
        "freshness_ms": P50_P99,
    },
    {"store": TEXT, "dedupe": {"type": "boolean"}, "view": MAYBE},
)
SUMMARY = obj(
    {
        **dict.fromkeys(LEDGER, COUNT),
        "failed": COUNT,
        "errors": COUNT,
        "target_rate": MAYBE_NUMBER,
        "produce_rate": MAYBE_NUMBER,  # None: no whole second of the run was measured
        "consume_rate": MAYBE_NUMBER,
        "publish_latency_ms": LATENCY,
        "e2e_latency_ms": LATENCY,
        "max_lag": COUNT,
        "adds_up": {"type": "boolean"},
    },
    {
        "unacked_delivered": COUNT,
        "max_backlog": COUNT,
        "poison_acked": COUNT,
        "sent": COUNT,
        "receive_calls": COUNT,
        "empty_receives": COUNT,
        "stream": STREAM | MAYBE,
        # Request-reply (lab/engine/requests.py): with a round trip come its counts.
        "round_trip_ms": LATENCY,
        **dict.fromkeys(REQUESTS, COUNT),
        "requests_add_up": {"type": "boolean"},
    },
)
SUMMARY["dependentRequired"] = {"round_trip_ms": [*REQUESTS, "requests_add_up"]}
# Pub-sub: each subscriber's summary, with the same fields as the broker's.
SUMMARY["properties"]["subscribers"] = {"type": "object", "additionalProperties": dict(SUMMARY)}
POINT = obj(
    {
        "t": NUMBER,
        "phase": {"enum": [str(p) for p in Phase]},
        "state": TEXT,
        **dict.fromkeys(("target_rate", "produce_rate", "consume_rate"), NUMBER),
        **dict.fromkeys(("publish_p50_ms", "publish_p99_ms", "e2e_p50_ms", "e2e_p99_ms"), NUMBER),
        **dict.fromkeys(("acked", "delivered", "in_flight", "duplicates"), COUNT),
    },
    {
        "lag": {"type": ["integer", "null"]},
        "network": {"type": "object"},
        # Request-reply runs: the round trip over the interval, the requests so far.
        **dict.fromkeys(("round_trip_p50_ms", "round_trip_p99_ms"), NUMBER),
        **dict.fromkeys(("replied", "timed_out"), COUNT),
        # [stream] runs: view freshness and trigger latency as the features panel had them.
        **dict.fromkeys(("freshness_p99_ms", "trigger_p99_ms"), MAYBE_NUMBER),
    },
)
BROKER = obj(
    {
        "broker": TEXT,
        "version": MAYBE_TEXT,
        "client": TEXT,
        "settings": {"type": "object", "additionalProperties": TEXT},
        "summary": SUMMARY,
    },
    {
        "series": {"type": "array", "items": POINT},
        "per_second": {"type": "object", "additionalProperties": {"type": "array", "items": COUNT}},
        "problems": {"type": "array", "items": TEXT},
        "emulates": MAYBE_TEXT,
        "settings_read": {"type": "array", "items": {"type": "object"}},
    },
    closed=True,
)
EVENT = obj({"t": NUMBER, "kind": TEXT, "message": TEXT}, {"broker": MAYBE_TEXT}, closed=True)
RECIPE = obj(
    {
        "name": TEXT,
        "duration": NUMBER,
        "durability": TEXT,
        "rate": obj({"profile": TEXT, "rate": NUMBER}, {"curve": {"type": "array"}}),
        "message": obj({"size": COUNT}),
    },
    {
        "warmup": NUMBER,
        # The report predicts a backlog from these (lab/capacity/predict.py).
        "consumers": obj({}, {"count": COUNT, "processing_time": NUMBER}),
    },
)
RUN = obj(
    {
        "run_id": TEXT,
        "recipe": RECIPE,
        "mode": TEXT,
        "started_at": TEXT,
        "duration_s": NUMBER,
        "environment": obj({"runtime": TEXT, "cpu_count": {"type": ["integer", "null"]}}),
        "brokers": {"type": "object", "minProperties": 1, "additionalProperties": BROKER},
    },
    {"events": {"type": "array", "items": EVENT}, "problems": {"type": "array", "items": TEXT}}
    | {"schema": COUNT},
    closed=True,
)

_VALIDATOR = Draft202012Validator(RUN)


def problem(data: object) -> str | None:
    """What makes `data` not a run's results, naming where; None when it is one."""
    error = best_match(_VALIDATOR.iter_errors(data))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "the file"
    return f"{where}: {error.message}"
