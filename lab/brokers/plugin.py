"""What one broker tells the rest of the lab: the class its package exports as PLUGIN.

Outside lab/brokers/<name>/ the lab never names a broker. The registry
(lab/brokers/__init__.py) holds one BrokerPlugin per broker, and every other part asks
it: CLI choices, settings and ports, recipes and their per-broker sections, the three
runtimes, compose files, doctor, the engine and the TUI. The heavy parts (client
libraries, native and container definitions) are imported only when a method asks for
them, so listing the brokers costs nothing.

A new broker is one package with an `__init__.py` like this:

    class NatsPlugin(BrokerPlugin):
        name, display, order = "nats", "NATS JetStream", 50
        ports = {"nats": 222}
        schemes, default_port, url_example = ("nats",), 4222, "nats://HOST:4222"

        def endpoint(self, host, port, secret): ...
        def probe(self, ep, timeout): ...
        def adapter(self, spec): ...   # a BrokerAdapter (lab/brokers/contract.py)
        def native(self, settings): ...  # a NativeBroker (lab/runtimes/native/spec.py)

    PLUGIN = NatsPlugin()
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from lab.endpoints import Endpoint

if TYPE_CHECKING:
    from lab.brokers.contract import BrokerAdapter, RunSpec
    from lab.runtimes.containers import Service
    from lab.runtimes.native.spec import NativeBroker
    from lab.settings import Settings

# Compose files beyond the single node: file name -> (what it is, its services).
Clusters = dict[str, tuple[str, tuple["Service", ...]]]


class BrokerPlugin:
    name: ClassVar[str]  # the lab's name for it: CLI, recipes, results, state dir
    display: ClassVar[str]  # how people write it
    order: ClassVar[int] = 100  # its place in lists and in the TUI's columns
    # Ports in the lab's block, name -> offset; the first is where clients connect. The
    # offsets echo each broker's standard port, so a user can tell them apart.
    ports: ClassVar[Mapping[str, int]]
    # The port the chaos proxy forwards to, when not the client port.
    proxy_upstream: ClassVar[str | None] = None
    # The external runtime can put the chaos proxy in front of a URL of this broker.
    proxy_external: ClassVar[bool] = True
    # URL schemes; the first is the one the lab writes for the instances it runs, and a
    # URL given for the external runtime keeps its own (e.g. a plain one and a TLS one).
    schemes: ClassVar[tuple[str, ...]]
    default_port: ClassVar[int]  # of a URL that names none: the broker's standard port
    url_example: ClassVar[str]
    # Clients authenticate with a password the lab generates (never a default).
    password: ClassVar[bool] = True
    # The recipe's [<name>] section: a frozen dataclass whose fields have defaults.
    options: ClassVar[type | None] = None
    # Modules worker processes import before they fork (lab/forkserver.py).
    preload: ClassVar[tuple[str, ...]] = ()
    # Part of a run when a recipe names no brokers, and of `lab up` without arguments.
    default: ClassVar[bool] = True
    container_start_timeout: ClassVar[float] = 60.0  # docker runtime: until it answers
    # The broker has no consumer groups: the engine hands each consumer its share of the
    # recipe's partitions, and again whenever consumers come or go (ConsumerClient.assign).
    assigns_partitions: ClassVar[bool] = False
    # The recipe's retention limits the broker applies itself (its probe names what they
    # deleted). A limit not listed is not applied, and the adapter's settings say so.
    retention_limits: ClassVar[tuple[str, ...]] = ("max_age", "max_messages", "max_bytes")
    # Its probe() says the backlog (Probe.depth) while a run goes on. False where the
    # broker's API has no backlog count: live probes say None, and only the final probe
    # counts what the broker still holds (Pub/Sub: only Cloud Monitoring has the number).
    reports_depth: ClassVar[bool] = True
    # A local server that speaks a cloud service's API stands in for it: which service.
    # Results and the TUI say so: its behaviour is the service's, its speed is not.
    emulates: ClassVar[str | None] = None
    # The recipe patterns its adapter runs (lab/recipes/model.py PATTERNS).
    patterns: ClassVar[tuple[str, ...]] = ("work-queue", "fire-and-forget")
    # What fire-and-forget is on this broker: its nearest send without an acknowledgement.
    fire_and_forget: ClassVar[str] = "the client's send, its answer ignored"
    # Where request-reply's replies go on this broker (its reply address).
    request_reply: ClassVar[str] = ""
    # What [consumers] poll = "long" and "short" are on this broker, for the results.
    polling: ClassVar[Mapping[str, str]] = {
        "long": "a receive that waits on the server for the first message",
        "short": "a receive that does not wait",
    }

    def cannot(self, pattern: str) -> str | None:
        """Why this broker cannot run `pattern`, in one line; None when it can."""
        if pattern in self.patterns:
            return None
        runs = ", ".join(self.patterns)
        return f"{self.name} does not run the {pattern} pattern yet (it runs {runs})"

    @property
    def client_port(self) -> str:
        return next(iter(self.ports))

    def endpoint(self, host: str, port: int, secret: str | None) -> Endpoint:
        """Where the lab's clients reach an instance the lab runs (native or container)."""
        raise NotImplementedError

    def check_url(self, ep: Endpoint) -> str | None:
        """Why a URL given for the external runtime does not suit the lab's clients."""
        return None

    def probe(self, ep: Endpoint, timeout: float) -> str | None:
        """Readiness: one real client call within `timeout`. Returns the version the broker
        reports (None where its protocol does not say); raises on any failure."""
        raise NotImplementedError

    def adapter(self, spec: "RunSpec") -> "BrokerAdapter":
        raise NotImplementedError

    def native(self, settings: "Settings") -> "NativeBroker":
        """How the native runtime installs, starts, checks and stops it on this host."""
        raise NotImplementedError

    def service(self, settings: "Settings") -> "Service | None":
        """Its container for the docker runtime and compose/, or None if it has none."""
        return None

    def clusters(self, settings: "Settings") -> Clusters:
        return {}

    def __repr__(self) -> str:
        return f"<broker {self.name}>"
