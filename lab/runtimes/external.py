"""The external runtime: brokers someone else runs (a compose cluster, a managed service),
given by URL. The lab did not start them, so it cannot signal their processes: kill,
pause, resume and restart say so. Network faults still work, through the chaos proxy.

    lab --broker-url kafka://10.0.0.5:9092 --broker-url amqp://lab:PASS@10.0.0.6/ status
    LAB_EXTERNAL_CONFIG=brokers.toml lab status

    # brokers.toml
    [brokers]
    kafka = "kafka://10.0.0.5:9092"
    rabbitmq = "amqp://lab:PASS@10.0.0.6:5672/"
    redis = "redis://:PASS@10.0.0.7:6379/0"
    postgres = "postgresql://lab:PASS@10.0.0.8:5432/postgres"
    sqs = "sqs+https://message-queue.api.cloud.yandex.net"   # or sqs.REGION.amazonaws.com
    kinesis = "kinesis+https://kinesis.eu-west-1.amazonaws.com"
    pubsub = "pubsub://pubsub.googleapis.com:443/my-project"

The cloud brokers run the same code on their emulators and on the services, which the
URL tells apart: `sqs://HOST:9324` is ElasticMQ over plain http, `sqs+https://HOST` a
service (Amazon SQS, Yandex Message Queue); `kinesis://HOST:4567` is kinesalite,
`kinesis+https://HOST[/REGION/FOLDER/DATABASE]` Amazon Kinesis or Yandex Data Streams;
`pubsub://HOST:PORT/PROJECT` is Google's emulator on any port but 443, Google's service
(TLS) on 443. Their credentials never come from the URL: the AWS SDK's chain
(AWS_ACCESS_KEY_ID, ~/.aws/credentials) and Google's Application Default Credentials
(GOOGLE_APPLICATION_CREDENTIALS) find them, as every SDK does.

Passwords are never shown: status, errors and logs carry redacted URLs only.
"""

import re
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lab import brokers as registry
from lab.endpoints import Endpoint
from lab.errors import LabError, unknown_choice
from lab.runtimes.base import Progress
from lab.runtimes.model import BrokerState, BrokerStatus, ResourceStats
from lab.settings import Settings

HOW = "pass --broker-url BROKER=URL, or name a TOML file in LAB_EXTERNAL_CONFIG"


def scheme_brokers() -> dict[str, str]:
    """URL scheme -> the broker it names."""
    return {scheme: p.name for p in registry.plugins().values() for scheme in p.schemes}


def redact_text(text: str) -> str:
    """A URL as the user typed it, with any password masked: for error messages about
    input that may not even parse."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text if "@" not in text else "***@" + text.rpartition("@")[2]
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}://{userinfo}{at}{hostport}{slash}{tail}"


def parse_url(text: str, broker: str | None = None, source: str = "--broker-url") -> Endpoint:
    """An Endpoint from a broker URL; `broker` (if given) must match the URL's scheme."""
    shown = redact_text(text.strip())

    def bad(why: str) -> LabError:
        return LabError(f"{source}: '{shown}' {why}")

    try:
        url = urlsplit(text.strip())
    except ValueError as exc:
        raise bad(f"is not a URL ({exc})") from None
    scheme = url.scheme.lower()
    by_scheme = scheme_brokers()
    if scheme not in by_scheme:
        secure = scheme.endswith("s") and scheme[:-1] in by_scheme
        if secure or "ssl" in scheme or "tls" in scheme:
            raise bad("uses TLS, which the lab's clients do not support yet: use a plain URL")
        schemes = ", ".join(f"{s}://" for s in by_scheme)
        raise bad(f"has no broker scheme: start it with one of {schemes}")
    found = by_scheme[scheme]
    plugin = registry.get(found)
    if broker and broker != found:
        example = registry.get(broker).url_example
        raise bad(f"is a {found} URL, not a {broker} one: e.g. {example}")
    if "," in url.netloc:
        raise bad("names several hosts: give one; clients find a cluster's other nodes")
    if url.query or url.fragment:
        raise bad("has ?options or a #fragment, which the lab does not use: remove them")
    try:
        port = url.port or plugin.default_port
    except ValueError:
        raise bad("has a port that is not a number from 1 to 65535") from None
    if not url.hostname:
        raise bad(f"has no host: e.g. {plugin.url_example}")
    path = unquote(url.path[1:]) if url.path.startswith("/") else unquote(url.path)
    ep = Endpoint(
        found,
        scheme,  # the URL's own: a broker may have a plain scheme and a TLS one
        url.hostname,
        port,
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password is not None else None,
        path=path,
    )
    problem = plugin.check_url(ep)
    if problem:
        raise bad(problem)
    return ep


def parse_broker_urls(values: Sequence[str]) -> dict[str, Endpoint]:
    """`--broker-url` values: `BROKER=URL`, or a bare URL whose scheme names the broker."""
    found: dict[str, Endpoint] = {}
    for value in values:
        name, eq, rest = value.partition("=")
        if eq and "://" not in name:
            registry.get(name)  # an unknown name: one line that lists the known ones
            ep = parse_url(rest, name)
        else:
            ep = parse_url(value)
        found[ep.broker] = ep
    return found


def load_config(path: str | Path) -> dict[str, Endpoint]:
    """The [brokers] table of a TOML file: broker name -> URL."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise LabError(f"cannot read the external brokers file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        # The decoder quotes the offending text, which may hold a password: say where only.
        where = re.search(r"\(at line \d+, column \d+\)", str(exc))
        raise LabError(
            f"{path} is not valid TOML {where[0] if where else ''}".rstrip()
            + ": see `lab --help` for the [brokers] table"
        ) from None
    table = data.get("brokers")
    if not isinstance(table, dict) or not table:
        first = next(iter(registry.plugins().values()))
        example = f'{first.name} = "{first.url_example}"'
        raise LabError(f"{path} has no [brokers] table: add e.g. {example}")
    found = {}
    for name, url in table.items():
        if name not in registry.names():
            raise unknown_choice(f"broker in {path}", name, registry.names())
        if not isinstance(url, str):
            example = registry.get(name).url_example
            raise LabError(f"{path}: brokers.{name} must be a URL string, e.g. {example}")
        found[name] = parse_url(url, name, source=f"{path}: brokers.{name}")
    return found


class ExternalRuntime:
    name = "external"

    def __init__(
        self, settings: Settings, endpoints: Mapping[str, Endpoint], wait_seconds: float = 30.0
    ) -> None:
        self.settings = settings
        self.endpoints = dict(endpoints)
        self.wait_seconds = wait_seconds  # how long `up` waits for a broker to answer
        self._versions: dict[str, str | None] = {}

    def __repr__(self) -> str:
        urls = ", ".join(f"{b}={ep.redacted()}" for b, ep in self.endpoints.items())
        return f"ExternalRuntime({urls})"

    # --- lifecycle: the brokers exist already; `up` checks that they answer ----------

    def up(self, brokers: Sequence[str], progress: Progress | None = None) -> list[BrokerStatus]:
        names = registry.check(brokers) if brokers else list(self.endpoints)
        if not names:
            raise LabError(f"no external brokers are configured: {HOW}")
        for name in names:
            self.endpoint(name)  # every broker has a URL, before waiting on any
        say = progress or (lambda _broker, _msg: None)
        for name in names:
            self._wait(name, say)
        return self.status(names, sample_seconds=0)

    def down(self, brokers: Sequence[str]) -> None:
        """Nothing to stop: the lab leaves brokers it did not start running."""
        registry.check(brokers)

    def restart(self, broker: str, progress: Progress | None = None) -> BrokerStatus:
        raise self._no_process_faults("restart", broker)

    def kill(self, broker: str) -> None:
        raise self._no_process_faults("kill", broker)

    def pause(self, broker: str) -> None:
        raise self._no_process_faults("pause", broker)

    def resume(self, broker: str) -> None:
        raise self._no_process_faults("resume", broker)

    # --- observation ----------------------------------------------------------------

    def status(self, brokers: Sequence[str], sample_seconds: float = 0.5) -> list[BrokerStatus]:
        result = []
        for name in registry.check(brokers):
            ep = self.endpoints.get(name)
            if ep is None:
                result.append(
                    BrokerStatus(name, self.name, BrokerState.STOPPED, detail=f"no URL: {HOW}")
                )
                continue
            error = self._probe(name, ep)
            result.append(
                BrokerStatus(
                    broker=name,
                    runtime=self.name,
                    state=BrokerState.UNHEALTHY if error else BrokerState.HEALTHY,
                    endpoint=ep.redacted(),
                    version=self._versions.get(name),
                    detail=error or "external: started and run by someone else",
                )
            )
        return result

    def health(self, broker: str) -> bool:
        (name,) = registry.check([broker])
        ep = self.endpoints.get(name)
        return ep is not None and self._probe(name, ep) is None

    def stats(self, broker: str) -> ResourceStats | None:
        """None: the processes run elsewhere, out of the lab's sight."""
        registry.check([broker])
        return None

    def logs(self, broker: str, lines: int = 100) -> str:
        ep = self.endpoint(broker)
        error = self._probe(ep.broker, ep)
        answer = f"it answers now ({self._versions.get(ep.broker) or 'version not reported'})"
        return (
            f"(no log: {ep.broker} at {ep.redacted()} is run by someone else, and its log is "
            f"where they keep it, e.g. `docker compose logs`; {error or answer})"
        )

    def endpoint(self, broker: str) -> Endpoint:
        (name,) = registry.check([broker])
        if name not in self.endpoints:
            raise LabError(f"the external runtime has no URL for {name}: {HOW}")
        return self.endpoints[name]

    def proxy_route(self, broker: str) -> tuple[int, str, int] | None:
        ep = self.endpoint(broker)
        if not registry.get(ep.broker).proxy_external:
            return None
        return 0, ep.host, ep.port

    # --- internals ------------------------------------------------------------------

    def _probe(self, name: str, ep: Endpoint, timeout: float = 2.0) -> str | None:
        """None when the broker answers, else one line saying why not (password-free)."""
        try:
            self._versions[name] = registry.probe(ep, timeout=timeout)
            return None
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            text = (lines[0] if lines else type(exc).__name__)[:200]
            return f"does not answer: {_scrub(text, ep)}"

    def _wait(self, name: str, say: Progress) -> None:
        ep = self.endpoints[name]
        deadline = time.monotonic() + self.wait_seconds
        while True:
            error = self._probe(name, ep, timeout=min(2.0, max(0.5, self.wait_seconds)))
            if error is None:
                say(name, f"answers at {ep.redacted()}")
                return
            if time.monotonic() > deadline:
                raise LabError(
                    f"{name} at {ep.redacted()} {error} (waited {self.wait_seconds:g}s): "
                    "check the URL, the credentials and that this machine can reach it"
                )
            time.sleep(0.5)

    def _no_process_faults(self, action: str, broker: str) -> LabError:
        ep = self.endpoint(broker)
        return LabError(
            f"{action} is not available for {ep.broker} on the external runtime: the lab did "
            f"not start it ({ep.redacted()}), so it cannot signal its processes; network "
            "faults (latency, bandwidth, blackhole, reset) still work through the chaos proxy"
        )


def _scrub(text: str, ep: Endpoint) -> str:
    if ep.password:
        text = text.replace(ep.password, "***")
    return text


def from_options(
    settings: Settings, broker_urls: Sequence[str] = (), config: str | None = None
) -> ExternalRuntime:
    """The runtime for `--broker-url` values and a config file (the flags win)."""
    endpoints = load_config(config) if config else {}
    endpoints.update(parse_broker_urls(broker_urls))
    if not endpoints:
        raise LabError(f"the external runtime needs broker URLs: {HOW}")
    return ExternalRuntime(settings, endpoints)
