"""Google Cloud Pub/Sub, run here as Google's own emulator: a topic per run, one
subscription as the consumer group (pub-sub: one per subscriber), a dead-letter topic.

adapter.py     provision, probe, teardown, settings
producer.py    batched publishing; consumer.py a streaming pull of the lab's own
resources.py   the topics and subscriptions, retention and dead-letter policy bounds
backlog.py     counting what a subscription holds (Pub/Sub's API has no count)
dlq.py         the dead-letter policy, the consumer's own dead letters, browse, redrive
replies.py     request-reply: a reply topic and subscription per requester
connection.py  emulator or Google's service: channels, credentials, names, errors
native.py      the emulator jar, run with java; service.py its container
"""

import re
from typing import TYPE_CHECKING

from lab.brokers.plugin import BrokerPlugin
from lab.brokers.pubsub.options import NATIVE_PROJECT, PubsubOptions
from lab.endpoints import Endpoint

if TYPE_CHECKING:
    from lab.brokers.contract import BrokerAdapter, RunSpec
    from lab.runtimes.containers import Service
    from lab.runtimes.native.spec import NativeBroker
    from lab.settings import Settings

# Google's project ids are 6 to 30 of these; emulators take any name, so allow a little
# more (and the domain-scoped form, example.com:project).
PROJECT = re.compile(r"[a-z][a-z0-9.:-]{3,62}[a-z0-9]")


class PubsubPlugin(BrokerPlugin):
    name = "pubsub"
    display = "Pub/Sub"
    order = 60
    patterns = ("work-queue", "pub-sub", "fire-and-forget", "request-reply")
    request_reply = (
        "a reply topic and subscription per requester; the responder publishes with the "
        "correlation id as an attribute, the requester pulls and acks"
    )
    fire_and_forget = "publish without waiting for the message ids the server returns"
    polling = {
        "long": "Pull that waits on the server for messages (or the streaming pull, [pubsub] pull)",
        "short": "Pull with the shortest deadline (returnImmediately is deprecated)",
    }
    ports = {"pubsub": 85}
    schemes = ("pubsub",)
    # Google's service; an emulator has no standard port (gcloud's default is 8085), so
    # its URL names one: pubsub://HOST:8085/PROJECT.
    default_port = 443
    url_example = "pubsub://pubsub.googleapis.com/PROJECT"
    password = False
    options = PubsubOptions
    preload = ("google.cloud.pubsub_v1",)
    default = False
    emulates = "Google Cloud Pub/Sub"
    # No backlog count in Pub/Sub's API (backlog.py): live depth only in pub-sub, counted
    # per subscriber on a copy of its subscription made by snapshot and seek. Retention:
    # the service applies max_age, 10 minutes at the least; the emulator applies nothing
    # (resources.py).
    reports_depth = False
    retention_limits = ()  # the emulator never expires anything (its code reads no setting)
    container_start_timeout = 60.0

    def endpoint(self, host: str, port: int, secret: str | None) -> Endpoint:
        return Endpoint(self.name, "pubsub", host, port, path=NATIVE_PROJECT)

    def check_url(self, ep: Endpoint) -> str | None:
        if ep.username or ep.password:
            return (
                "has credentials: Pub/Sub clients use Google's Application Default "
                "Credentials (GOOGLE_APPLICATION_CREDENTIALS), never a password in the URL"
            )
        if ep.path and not PROJECT.fullmatch(ep.path):
            return f"names '{ep.path}', which is not a project id: pubsub://HOST:PORT/PROJECT"
        return None

    def probe(self, ep: Endpoint, timeout: float) -> str | None:
        from google.pubsub_v1 import PublisherClient
        from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport

        from lab.brokers.pubsub.connection import channel, project_of

        ch = channel(ep)
        try:
            api = PublisherClient(transport=PublisherGrpcTransport(channel=ch))
            # A real call that any Pub/Sub server answers; neither says its version.
            api.list_topics(
                request={"project": f"projects/{project_of(ep)}", "page_size": 1},
                retry=None,
                timeout=timeout,
            )
        finally:
            ch.close()
        return None

    def adapter(self, spec: "RunSpec") -> "BrokerAdapter":
        from lab.brokers.pubsub.adapter import PubsubAdapter

        return PubsubAdapter(spec)

    def native(self, settings: "Settings") -> "NativeBroker":
        from lab.brokers.pubsub.native import PubsubEmulator

        return PubsubEmulator(settings, self)

    def service(self, settings: "Settings") -> "Service":
        from lab.brokers.pubsub.service import single_node

        return single_node(settings)


PLUGIN = PubsubPlugin()
