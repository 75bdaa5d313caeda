"""How the lab's Pub/Sub clients reach a server, what the run's resources are called, and
what a failed call says.

One code path for Google's service and for an emulator; only the channel differs, and
the URL's port says which: 443 is the service (TLS, Application Default Credentials),
any other port an emulator (plaintext, no credentials), as PUBSUB_EMULATOR_HOST would
name it. Credentials never come from the URL: google.auth finds them where Google's
SDKs look (GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file, the metadata server). The
clients get a channel of the lab's own, so a PUBSUB_EMULATOR_HOST in the environment
cannot send them somewhere else.
"""

import logging
import os
from dataclasses import dataclass, field

import google.auth
import grpc
from google.api_core import exceptions as gexc
from google.api_core import grpc_helpers
from google.auth import exceptions as auth_exceptions

from lab.brokers.contract import BrokerError, RunSpec
from lab.endpoints import Endpoint

SERVICE_PORT = 443
SERVICE_HOST = "pubsub.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/pubsub",)

# The client libraries log through `logging`; without a handler of the application's,
# Python's last-resort handler would print their warnings over the lab's screen.
for _logger in ("google.api_core", "google.auth", "google.cloud.pubsub_v1"):
    logging.getLogger(_logger).addHandler(logging.NullHandler())

# The options Google's Pub/Sub transports set: no message size cap in the client, and
# keepalives, so a streaming pull notices a dead connection (a chaos-proxy partition).
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.keepalive_time_ms", 30_000),
]


def is_service(ep: Endpoint) -> bool:
    return ep.port == SERVICE_PORT


def project_of(ep: Endpoint) -> str:
    """The URL's path, else GOOGLE_CLOUD_PROJECT, else the project of the credentials."""
    if ep.path:
        return ep.path
    found = os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not found and is_service(ep):
        try:
            found = google.auth.default(scopes=SCOPES)[1]
        except auth_exceptions.DefaultCredentialsError:
            found = None  # no credentials at all: the channel says so when it is made
    if not found:
        raise BrokerError(
            "pubsub: no project: name it in the URL (pubsub://HOST:PORT/PROJECT) "
            "or set GOOGLE_CLOUD_PROJECT"
        )
    return found


def channel(ep: Endpoint, direct: Endpoint | None = None) -> grpc.Channel:
    """A channel to `ep`. `direct` is the server itself when `ep` is the chaos proxy in
    front of it: its port decides TLS, and TLS checks the server's own name."""
    server = direct or ep
    target = f"{ep.host}:{ep.port}"
    if not is_service(server):
        return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    options = list(CHANNEL_OPTIONS)
    if server.host != ep.host:
        options.append(("grpc.ssl_target_name_override", server.host))
    try:
        return grpc_helpers.create_channel(
            target, scopes=SCOPES, default_host=SERVICE_HOST, options=options
        )
    except auth_exceptions.DefaultCredentialsError as exc:
        raise BrokerError(f"pubsub: no Google credentials: {first_line(exc)}") from None


@dataclass(frozen=True)
class Names:
    """A run's resources: the topic, the subscription that is its consumer group, and
    the dead-letter topic with a subscription that keeps what reaches it. Pub-sub: a
    subscription per subscriber, and one more that the probe counts backlogs with
    (backlog.py); request-reply: a reply topic and subscription per requester."""

    project: str
    topic: str
    subscription: str  # the one this client reads: its subscriber's in pub-sub
    dlq_topic: str
    dlq_subscription: str
    # Whose they are: what a missing resource means (lab dlq) depends on it.
    run_id: str = ""
    service: bool = False  # Google's service; else an emulator, which forgets on restart
    # By subscriber ("" outside pub-sub), in the order provision creates them.
    subscriptions: dict[str, str] = field(default_factory=dict)
    counter: str = ""  # pub-sub: seeked to a subscriber's snapshot to count its backlog
    snapshot: str = ""  # the snapshot the count is made from, deleted after each count
    reply_topics: tuple[str, ...] = ()  # request-reply: by requester
    reply_subscriptions: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec: RunSpec) -> "Names":
        project = project_of(spec.admin)
        topics, subs = f"projects/{project}/topics", f"projects/{project}/subscriptions"
        pub_sub = spec.recipe.pattern == "pub-sub"
        requesters = spec.recipe.producers.count if spec.recipe.request_reply else 0
        replies = [spec.reply_to(i) for i in range(requesters)]
        return cls(
            project=project,
            topic=f"{topics}/{spec.queue}",
            subscription=f"{subs}/{spec.group}",
            dlq_topic=f"{topics}/{spec.dead_letter_queue}",
            dlq_subscription=f"{subs}/{spec.dead_letter_queue}",
            run_id=spec.run_id,
            service=is_service(spec.admin),
            subscriptions={s: f"{subs}/{spec.group_of(s)}" for s in spec.subscribers},
            counter=f"{subs}/{spec.queue}.backlog" if pub_sub else "",
            snapshot=f"projects/{project}/snapshots/{spec.queue}.backlog" if pub_sub else "",
            reply_topics=tuple(f"{topics}/{name}" for name in replies),
            reply_subscriptions=tuple(f"{subs}/{name}" for name in replies),
        )


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def reason(exc: BaseException) -> str:
    """One line for a failed call: the gRPC status and the server's message."""
    if isinstance(exc, gexc.RetryError) and exc.cause is not None:
        return f"{reason(exc.cause)} (after retrying: {exc.message.split(',')[0]})"
    if isinstance(exc, gexc.GoogleAPICallError):
        code = exc.grpc_status_code.name if exc.grpc_status_code else type(exc).__name__
        return f"{code}: {first_line(exc.message or exc)}"
    return first_line(exc)


def gone(exc: BaseException) -> bool:
    """The topic or subscription does not exist (any more): an emulator forgets them
    all when it restarts."""
    return isinstance(exc, gexc.NotFound)
