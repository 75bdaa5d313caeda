"""The lab's containers on a Docker engine: what the lab asks the engine to create for a
broker, and finding, creating, starting and removing containers by the lab's labels.

Labels, on every container the docker runtime creates:
    broker-lab.managed-by = broker-lab
    broker-lab.state-dir  = <state dir>     (down and cleanup select on this one alone)
    broker-lab.broker     = <broker>
    broker-lab.port-base  = <port base>
    broker-lab.config     = <hash of the create request>  (changed settings: new container)
"""

import contextlib
import hashlib
import json
from collections.abc import Callable

import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from lab import brokers as registry
from lab.errors import LabError
from lab.runtimes import docker_engine as engine
from lab.runtimes.containers import BROKER_LABEL, Secret, Service, service
from lab.runtimes.model import BrokerState
from lab.settings import Settings

MANAGED_LABEL = "broker-lab.managed-by"
STATE_LABEL = "broker-lab.state-dir"
PORT_BASE_LABEL = "broker-lab.port-base"
CONFIG_LABEL = "broker-lab.config"

NS = 1_000_000_000  # the engine takes health check durations in nanoseconds
# A broker that exits with these after SIGTERM/SIGINT stopped gracefully (JVMs: 143).
GRACEFUL_EXIT_CODES = (0, 130, 143)


def is_up(container: Container | None) -> bool:
    return container is not None and container.status in ("running", "paused")


class LabContainers:
    def __init__(self, settings: Settings, client: Callable[[], docker.DockerClient]) -> None:
        self.settings = settings
        self._client = client  # connects on first use: no engine, no error until needed

    @property
    def client(self) -> docker.DockerClient:
        return self._client()

    # --- what is asked of the engine ------------------------------------------------

    def service(self, name: str) -> Service:
        return service(name, self.settings)

    def password(self, name: str) -> str | None:
        if any(isinstance(v, Secret) for v in self.service(name).environment.values()):
            return self.settings.secret(name)
        return None

    def name_of(self, name: str) -> str:
        """One lab per port block per engine: the port base keeps two labs' names apart."""
        return f"broker-lab-{self.settings.port_base}-{name}"

    def request(self, name: str) -> dict:
        """The keyword arguments of the SDK's create_container for the broker."""
        svc = self.service(name)
        secret = self.password(name)
        check = svc.healthcheck
        request = {
            "image": svc.ref,
            "name": self.name_of(name),
            "hostname": svc.name,
            "command": list(svc.command) or None,
            "environment": {
                k: (secret if isinstance(v, Secret) else v) for k, v in svc.environment.items()
            },
            "labels": {
                **svc.labels,
                MANAGED_LABEL: "broker-lab",
                STATE_LABEL: str(self.settings.state_dir),
                PORT_BASE_LABEL: str(self.settings.port_base),
            },
            "ports": [(p.container, "tcp") for p in svc.ports],
            "healthcheck": {
                "test": list(check.test),
                "interval": check.interval * NS,
                "timeout": check.timeout * NS,
                "retries": check.retries,
                "start_period": check.start_period * NS,
            },
            "stop_timeout": svc.stop_timeout,
            "detach": True,
            "host_config": {
                "port_bindings": {f"{p.container}/tcp": (p.host_ip, p.host) for p in svc.ports},
                "shm_size": svc.shm_size,
            },
        }
        # The hash covers the password too, so a new state dir gets a new container.
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
        request["labels"][CONFIG_LABEL] = digest[:16]
        return request

    # --- finding --------------------------------------------------------------------

    def all(self) -> list[Container]:
        """Every container of this lab's state dir, whatever its name or broker."""
        filters = {"label": [f"{STATE_LABEL}={self.settings.state_dir}"]}
        return self.call(
            "docker", "list", lambda: self.client.containers.list(all=True, filters=filters)
        )

    def by_broker(self) -> dict[str, Container]:
        found: dict[str, Container] = {}
        for container in self.all():
            broker = container.labels.get(BROKER_LABEL, "")
            if broker in registry.names() and (
                broker not in found or container.name == self.name_of(broker)
            ):
                found[broker] = container
        return found

    def find(self, name: str) -> Container | None:
        """The broker's container; duplicates (a lab killed mid-start) are removed."""
        mine = [c for c in self.all() if c.labels.get(BROKER_LABEL) == name]
        if not mine:
            return None
        keep = next((c for c in mine if c.name == self.name_of(name)), mine[0])
        for extra in mine:
            if extra is not keep:
                self.remove(extra)
        return keep

    # --- changing -------------------------------------------------------------------

    def create(self, name: str, request: dict) -> Container:
        api = self.client.api
        args = {k: v for k, v in request.items() if k != "host_config"}
        args["host_config"] = api.create_host_config(**request["host_config"])
        try:
            created = api.create_container(**args)
        except APIError as exc:
            if exc.status_code == 409:
                raise LabError(
                    f"a container named {request['name']} exists that this lab did not "
                    f"start: remove it (`docker rm -f {request['name']}`), or move the lab "
                    "with LAB_PORT_BASE"
                ) from None
            raise LabError(
                f"docker could not create {name}'s container: {engine.api_message(exc)}"
            ) from None
        return self.client.containers.get(created["Id"])

    def start(self, name: str, container: Container, remove_on_failure: bool) -> None:
        try:
            container.start()
        except APIError as exc:
            text = engine.one_line(engine.api_message(exc))
            if remove_on_failure:
                self.quietly(lambda: container.remove(v=True, force=True))
            if "port is already allocated" in text or "address already in use" in text:
                ports = ", ".join(str(p.host) for p in self.service(name).ports)
                raise LabError(
                    f"{name} cannot publish its port(s) {ports} on 127.0.0.1: another "
                    f"process holds one ({text}); stop it (a native {name}: "
                    f"`lab --runtime native down {name}`), or move the lab's ports with "
                    f"LAB_PORT_BASE (now {self.settings.port_base})"
                ) from None
            raise LabError(f"docker could not start {name}'s container: {text}") from None

    def remove(self, container: Container) -> None:
        """Graceful stop, then remove with its anonymous volumes: nothing is left behind."""
        broker = container.labels.get(BROKER_LABEL, "")
        timeout = self.stop_timeout(broker) if broker in registry.names() else 10
        try:
            container.reload()
            if container.status == "paused":
                container.unpause()
            if container.status in ("running", "paused", "restarting"):
                container.stop(timeout=timeout)
            container.remove(v=True, force=True)
        except NotFound:
            pass
        except APIError as exc:
            raise LabError(
                f"docker could not remove container {container.name}: "
                f"{engine.one_line(engine.api_message(exc))}"
            ) from None

    # --- reading --------------------------------------------------------------------

    def state(
        self, name: str, container: Container | None, answers: Callable[[], bool]
    ) -> tuple[BrokerState, str]:
        """The broker's state from its container and, when it runs, a protocol probe."""
        if container is None:
            return BrokerState.STOPPED, ""
        state = container.attrs.get("State", {})
        status = container.status
        if status == "created":
            return BrokerState.STOPPED, "container created, not started"
        if status == "paused":
            return BrokerState.PAUSED, "docker pause"
        if status == "restarting":
            return BrokerState.STARTING, "restarting"
        if status in ("exited", "dead"):
            code = state.get("ExitCode")
            if state.get("OOMKilled"):
                return BrokerState.KILLED, f"killed: out of memory; see `lab logs {name}`"
            if code in GRACEFUL_EXIT_CODES and status == "exited":
                return BrokerState.STOPPED, f"container stopped (exit code {code})"
            why = "SIGKILL" if code == 137 else f"exit code {code}"
            return BrokerState.KILLED, f"exited ({why}); see `lab logs {name}`"
        if answers():
            return BrokerState.HEALTHY, ""
        health = (state.get("Health") or {}).get("Status")
        if health == "starting":
            return BrokerState.STARTING, "container health: starting"
        return BrokerState.UNHEALTHY, f"does not answer (container health: {health or '-'})"

    def sample(self, container: Container) -> dict | None:
        """One sample of the stats API, without the engine's wait for a second one."""
        try:
            return container.stats(stream=False, one_shot=True)
        except (APIError, DockerException, requests.RequestException):
            return None

    def last_words(self, name: str, container: Container) -> str:
        try:
            text = container.logs(tail=40).decode(errors="replace")
        except (APIError, DockerException, requests.RequestException):
            return "(no log)"
        meaningful = [line for line in text.splitlines() if line.strip()]
        return self.scrub(name, meaningful[-1].strip()[:300] if meaningful else "(empty log)")

    def scrub(self, name: str, text: str) -> str:
        """No password in anything shown: the broker's own output included."""
        secret = self.password(name)
        return text.replace(secret, "***") if secret else text

    def stop_timeout(self, name: str) -> int:
        return self.service(name).stop_timeout

    # --- errors ---------------------------------------------------------------------

    def call(self, name: str, what: str, fn: Callable) -> object:
        """fn(), with the engine's failures as one LabError line."""
        try:
            return fn()
        except NotFound:
            raise LabError(f"{name} is not running: start it with `lab up {name}`") from None
        except APIError as exc:
            raise LabError(
                f"docker could not {what} {name}: {engine.one_line(engine.api_message(exc))}"
            ) from None
        except (DockerException, requests.RequestException) as exc:
            raise LabError(
                f"the Docker engine at {engine.engine_url()} stopped answering "
                f"({exc.__class__.__name__}): is it still running?"
            ) from None

    @staticmethod
    def quietly(fn: Callable) -> None:
        with contextlib.suppress(APIError, DockerException, requests.RequestException):
            fn()
