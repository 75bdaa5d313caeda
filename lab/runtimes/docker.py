"""The docker runtime: each broker in a container of its official image, via the SDK.

The containers carry the lab's labels (lab/runtimes/docker_containers.py): `down` and
leftover cleanup find them by label alone, never by name. Ports are the lab's own,
published on 127.0.0.1 only; passwords are the lab's generated ones, in the same files
the native runtime keeps in the state dir. `up` returns when each broker answers its own
protocol (its plugin's probe), as with the native runtime.
"""

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from lab import brokers as registry
from lab.endpoints import Endpoint
from lab.errors import LabError
from lab.runtimes import docker_engine as engine
from lab.runtimes.base import Progress, start_in_parallel
from lab.runtimes.containers import BROKER_LABEL, endpoint
from lab.runtimes.docker_containers import CONFIG_LABEL, LabContainers, is_up
from lab.runtimes.model import BrokerStatus, ResourceStats
from lab.settings import Settings


class Cancelled(Exception):
    """Start-up was interrupted (Ctrl-C)."""


class DockerRuntime:
    name = "docker"

    def __init__(
        self,
        settings: Settings,
        client: docker.DockerClient | None = None,
        start_timeout: float | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._start_timeout = start_timeout  # overrides every broker's, for tests
        self.containers = LabContainers(settings, lambda: self.client)
        self._samples: dict[str, dict] = {}  # container id -> previous stats sample
        self._watched: dict[str, Container | None] = {}  # broker -> container, for stats
        self._versions: dict[str, str | None] = {}

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.connect()
        return self._client

    def container_name(self, broker: str) -> str:
        return self.containers.name_of(broker)

    # --- lifecycle ------------------------------------------------------------------

    def up(self, brokers: Sequence[str], progress: Progress | None = None) -> list[BrokerStatus]:
        names = registry.check(brokers, registry.default_names())
        self.client  # noqa: B018  (no engine: one clear error before any work)
        say = progress or (lambda _broker, _msg: None)
        start_in_parallel(names, partial(self._up_one, say=say), self.down)
        return self.status(names, sample_seconds=0)

    def down(self, brokers: Sequence[str]) -> None:
        names = registry.check(brokers)
        found = self.containers.all()
        if set(names) != set(registry.names()):
            found = [c for c in found if c.labels.get(BROKER_LABEL) in names]
        # All at once: each broker takes its own time to shut down.
        if found:
            with ThreadPoolExecutor(len(found), thread_name_prefix="lab-docker-down") as pool:
                list(pool.map(self.containers.remove, found))
        for container in found:
            self._samples.pop(container.id, None)
        self._watched.clear()

    def restart(self, broker: str, progress: Progress | None = None) -> BrokerStatus:
        (name,) = registry.check([broker])
        container = self.containers.find(name)
        if not is_up(container):
            return self.up([name], progress)[0]
        say = progress or (lambda _broker, _msg: None)
        if container.status == "paused":
            container.unpause()  # the engine refuses to restart a paused container
        t0 = time.monotonic()
        say(name, "restarting its container")
        timeout = self.containers.stop_timeout(name)
        self.containers.call(name, "restart", lambda: container.restart(timeout=timeout))
        self._wait_ready(name, container, threading.Event(), say, t0)
        return self.status([name], sample_seconds=0)[0]

    def kill(self, broker: str) -> None:
        (name,) = registry.check([broker])
        container = self._require_running(name)
        if container.status == "paused":
            container.unpause()  # a frozen container cannot take a signal
        self.containers.call(name, "kill", lambda: container.kill(signal="SIGKILL"))

    def pause(self, broker: str) -> None:
        (name,) = registry.check([broker])
        container = self._require_running(name)
        if container.status == "running":
            # The cgroup freezer stops every process of the container, as SIGSTOP does
            # to the native broker's processes: connections stay open and hang.
            self.containers.call(name, "pause", container.pause)

    def resume(self, broker: str) -> None:
        (name,) = registry.check([broker])
        container = self._require_running(name)
        if container.status == "paused":
            self.containers.call(name, "unpause", container.unpause)

    # --- observation ----------------------------------------------------------------

    def status(self, brokers: Sequence[str], sample_seconds: float = 0.5) -> list[BrokerStatus]:
        names = registry.check(brokers)
        found = self.containers.by_broker()
        running = {n: found[n] for n in names if is_up(found.get(n))}
        first = {n: self.containers.sample(c) for n, c in running.items()}
        second = {}
        if running and sample_seconds > 0:
            time.sleep(sample_seconds)
            second = {n: self.containers.sample(c) for n, c in running.items()}
        with ThreadPoolExecutor(len(names), thread_name_prefix="lab-docker-status") as pool:
            states = list(
                pool.map(
                    lambda n: self.containers.state(n, found.get(n), lambda: self.health(n)),
                    names,
                )
            )
        rows = []
        for name, (state, detail) in zip(names, states, strict=True):
            sample = second.get(name) or first.get(name)
            pid = running[name].attrs["State"].get("Pid") if name in running else None
            cpu = engine.cpu_percent(first[name], second[name]) if second.get(name) else None
            service = self.containers.service(name)
            image_version = service.version or service.tag.split("-")[0]
            rows.append(
                BrokerStatus(
                    broker=name,
                    runtime=self.name,
                    state=state,
                    endpoint=self.endpoint(name).redacted(),
                    pid=pid or None,
                    cpu_percent=cpu,
                    rss_bytes=engine.memory_bytes(sample) if sample else None,
                    version=self._versions.get(name) or image_version,
                    detail=detail,
                )
            )
        return rows

    def health(self, broker: str) -> bool:
        (name,) = registry.check([broker])
        try:
            self._versions[name] = registry.probe(self.endpoint(name))
            return True
        except Exception:
            return False

    def stats(self, broker: str) -> ResourceStats | None:
        """CPU since the previous call for this broker and memory, from the stats API."""
        (name,) = registry.check([broker])
        # Called for every Snapshot: the container found last time is only re-read.
        container = self._watched.get(name)
        try:
            if container is None:
                raise NotFound("not watched yet")
            container.reload()
        except (NotFound, APIError, DockerException, requests.RequestException):
            container = self.containers.find(name)
        self._watched[name] = container
        sample = self.containers.sample(container) if is_up(container) else None
        if sample is None:
            return None
        previous = self._samples.get(container.id)
        self._samples[container.id] = sample
        return ResourceStats(engine.cpu_percent(previous, sample), engine.memory_bytes(sample))

    def logs(self, broker: str, lines: int = 100) -> str:
        (name,) = registry.check([broker])
        container = self.containers.find(name)
        if container is None:
            return f"(no container: {name} has not been started by the docker runtime)"
        raw = self.containers.call(name, "read the log of", lambda: container.logs(tail=lines))
        return self.containers.scrub(name, raw.decode(errors="replace").rstrip("\n"))

    def endpoint(self, broker: str) -> Endpoint:
        (name,) = registry.check([broker])
        return endpoint(name, self.settings, self.containers.password(name))

    def proxy_route(self, broker: str) -> tuple[int, str, int]:
        (name,) = registry.check([broker])
        return self.settings.proxy_route(name)  # the same ports as native, on loopback

    # --- starting -------------------------------------------------------------------

    def _up_one(
        self, name: str, cancel: threading.Event, started: list[str], say: Progress
    ) -> None:
        request = self.containers.request(name)
        container = self.containers.find(name)
        if container is not None and (
            container.labels.get(CONFIG_LABEL) != request["labels"][CONFIG_LABEL]
        ):
            say(name, "its settings changed: replacing its container")
            self.containers.remove(container)
            container = None
        t0 = time.monotonic()
        if container is None:
            self._ensure_image(name, request["image"], say, cancel)
            say(name, "creating its container")
            container = self.containers.create(name, request)
            started.append(name)
            self.containers.start(name, container, remove_on_failure=True)
        elif container.status == "running":
            if self.health(name):
                say(name, "already running")
                return
            say(name, "running: waiting until it answers")
        elif container.status == "paused":
            say(name, "paused: resuming")
            self.containers.call(name, "unpause", container.unpause)
        else:
            say(name, "starting its container")
            started.append(name)
            self.containers.start(name, container, remove_on_failure=False)
        try:
            self._wait_ready(name, container, cancel, say, t0)
        except Cancelled:
            raise
        except LabError:
            # Stopped, not removed: `lab logs` still shows why it did not come up.
            timeout = self.containers.stop_timeout(name)
            self.containers.quietly(lambda: container.stop(timeout=timeout))
            raise

    def _wait_ready(
        self, name: str, container: Container, cancel: threading.Event, say: Progress, t0: float
    ) -> None:
        timeout = self._start_timeout or registry.get(name).container_start_timeout
        deadline = t0 + timeout
        ep = self.endpoint(name)
        while True:
            if cancel.is_set():
                raise Cancelled(name)
            try:
                container.reload()
            except NotFound:
                raise LabError(f"{name}'s container was removed while it started") from None
            if container.status in ("exited", "dead"):
                code = container.attrs.get("State", {}).get("ExitCode")
                raise LabError(
                    f"{name}'s container exited while starting (code {code}): "
                    f"{self.containers.last_words(name, container)} (full log: lab logs {name})"
                )
            try:
                self._versions[name] = registry.probe(ep, timeout=1.0)
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"{name} did not answer within {timeout:g}s "
                        f"({self.containers.scrub(name, engine.one_line(str(exc)))}); "
                        f"last log line: {self.containers.last_words(name, container)}"
                    ) from None
                time.sleep(0.25)
                continue
            say(name, f"healthy in {time.monotonic() - t0:.1f}s")
            return

    def _ensure_image(self, name: str, ref: str, say: Progress, cancel: threading.Event) -> None:
        present = self.containers.call(
            name, "look up the image of", lambda: engine.image_present(self.client, ref)
        )
        if present:
            return
        say(name, f"pulling {ref}")
        t0 = time.monotonic()
        engine.pull(self.client, ref, cancel)
        say(name, f"pulled {ref} in {time.monotonic() - t0:.0f}s")

    def _require_running(self, name: str) -> Container:
        container = self.containers.find(name)
        if not is_up(container):
            raise LabError(f"{name} is not running: start it with `lab up {name}`")
        return container
