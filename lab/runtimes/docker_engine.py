"""The Docker engine as the docker runtime and `lab doctor` see it: where it is, whether
it answers, pulling images and reading the stats API. Every failure is one LabError line.
"""

import os
import threading

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound

from lab.errors import LabError

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Asking whether an engine is there must be quick (auto-selection does it on every
# command); the calls after that may wait for a broker to stop.
CONNECT_TIMEOUT = 3.0
API_TIMEOUT = 120.0


def engine_url() -> str:
    """Where the SDK looks for the engine: DOCKER_HOST, else the current docker context."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        return host
    try:
        from docker.context import ContextAPI

        host = ContextAPI.kwargs_from_context().get("base_url")
    except Exception:
        host = None
    return host or DEFAULT_HOST


def reason(exc: BaseException) -> str:
    text = str(exc)
    if "No such file or directory" in text or "FileNotFoundError" in text:
        return "nothing listens there"
    if "Permission denied" in text or "PermissionError" in text:
        return "permission denied: add your user to the `docker` group, or run as root"
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "it did not answer in time"
    return one_line(text)


class NoEngine(LabError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"no Docker engine answers at {url} ({reason}): start Docker, "
            "point DOCKER_HOST at a running engine, or use --runtime native"
        )
        self.url = url
        self.reason = reason


def connect(timeout: float = CONNECT_TIMEOUT) -> docker.DockerClient:
    """A client of an engine that answered a ping, or a LabError saying what to do."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, requests.RequestException) as exc:
        raise NoEngine(engine_url(), reason(exc)) from None
    client.api.timeout = API_TIMEOUT
    return client


def engine_version(client: docker.DockerClient) -> str:
    info = client.version()
    return f"Docker Engine {info.get('Version', '?')} (API {info.get('ApiVersion', '?')})"


def engine_answers() -> bool:
    try:
        connect().close()
        return True
    except LabError:
        return False


def image_present(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False


def pull(client: docker.DockerClient, ref: str, cancel: threading.Event | None = None) -> None:
    """Pull an image, raising a LabError on any failure: the engine reports some failures
    as an HTTP error and others as an error line inside a successful stream. A set
    `cancel` (Ctrl-C) stops waiting at the next progress line."""
    repository, _, tag = ref.rpartition(":")
    hint = f"check that the engine can reach the image registry, or run `docker pull {ref}`"
    try:
        for line in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if cancel is not None and cancel.is_set():
                raise LabError(f"pulling {ref} was interrupted")
            if isinstance(line, dict) and line.get("error"):
                raise LabError(f"could not pull {ref} ({one_line(line['error'])}): {hint}")
    except APIError as exc:
        raise LabError(f"could not pull {ref} ({one_line(api_message(exc))}): {hint}") from None
    except (DockerException, requests.RequestException) as exc:
        raise LabError(f"could not pull {ref} ({reason(exc)}): {hint}") from None
    if not image_present(client, ref):
        raise LabError(f"could not pull {ref} (the engine does not have it afterwards): {hint}")


def api_message(exc: APIError) -> str:
    return str(exc.explanation or exc)


def cpu_percent(previous: dict | None, current: dict) -> float:
    """CPU % (100 = one core) between two samples of the stats API, as `docker stats`
    computes it; 0.0 for the first sample of a container."""
    if not previous:
        return 0.0
    cpu, pre = current.get("cpu_stats") or {}, previous.get("cpu_stats") or {}
    used = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get(
        "total_usage", 0
    )
    elapsed = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cores = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    if used <= 0 or elapsed <= 0:
        return 0.0
    return round(used / elapsed * cores * 100.0, 1)


def memory_bytes(sample: dict) -> int:
    """Memory in use as `docker stats` shows it: usage less the inactive page cache
    (cgroup v2 `inactive_file`, v1 `total_inactive_file`)."""
    memory = sample.get("memory_stats") or {}
    usage = int(memory.get("usage", 0))
    stats = memory.get("stats") or {}
    cache = stats.get("inactive_file", stats.get("total_inactive_file", 0))
    return max(0, usage - int(cache))


def one_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return (lines[0] if lines else "no detail")[:200]
