"""RabbitMQ's settings as the broker itself reports them: the run's queues' type,
durability, arguments and policy, read with rabbitmqctl from the lab's own node.

Not over AMQP: a passive queue.declare answers with counts only, never durability or
arguments, and the management plugin (HTTP) is not enabled on the lab's node. rabbitmqctl
reaches the node over Erlang distribution with the node name, cookie (in HOME) and epmd
port the native runtime started it with (native.py), read from the node's own process.
A node the lab did not start here (a container, someone else's broker) is not asked: {}.
"""

import json
import os
import subprocess
from pathlib import Path

import psutil

from lab.brokers.contract import BrokerError, RunSpec
from lab.brokers.rabbitmq.dlq import dropped_queue
from lab.brokers.rabbitmq.native import SERVER
from lab.runtimes.native.processes import PidFile, process_of

CTL = str(Path(SERVER).with_name("rabbitmqctl"))
TIMEOUT = 10  # seconds rabbitmqctl waits for the node (a paused one answers nothing)
# What the CLI needs of the node's environment to find and authenticate to it.
NODE_ENV = ("HOME", "ERL_EPMD_PORT", "RABBITMQ_NODENAME", "RABBITMQ_CONF_ENV_FILE")
COLUMNS = ("name", "durable", "type", "arguments", "policy")


def read_settings(spec: RunSpec, queue: str) -> dict[str, str]:
    """The run's queues as the node lists them, {} where the lab did not start the node.
    `queue`: the one consumers read (in pub-sub, the first subscriber's: all are alike)."""
    env = _node_env(spec)
    if env is None:
        return {}
    queues = _list_queues(env, spec.admin.path or "/")
    main = queues.get(queue)
    if main is None:
        raise BrokerError(f"rabbitmq: the node lists no queue {queue}")
    found = {
        "queue_type": str(main.get("type")),
        "queue_durable": _flag(main.get("durable")),
        "queue_arguments": _arguments(main.get("arguments")),
        "queue_policy": main.get("policy") or "none",
    }
    for key, name in (
        ("dead_letter_queue", spec.dead_letter_queue),
        ("dropped_queue", dropped_queue(spec)),
    ):
        queue = queues.get(name)
        if queue is not None:
            durable = "durable" if queue.get("durable") is True else "NOT durable"
            found[key] = f"{queue.get('type')}, {durable}"
    return found


def _node_env(spec: RunSpec) -> dict[str, str] | None:
    """The environment rabbitmqctl needs to reach the node, if the native runtime runs it
    for this state dir: the broker is the last process of its pid file."""
    data = PidFile(spec.broker_dir() / "pids.json").load()
    node = process_of(data["processes"][-1]) if data and data["processes"] else None
    if node is None:
        return None
    try:
        own = node.environ()
    except psutil.Error:
        return None
    if not all(key in own for key in NODE_ENV):
        return None
    return {
        **os.environ,
        **{key: own[key] for key in NODE_ENV},
        # The CLI is an Erlang node too: its distribution port on loopback only.
        "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }


def _list_queues(env: dict[str, str], vhost: str) -> dict[str, dict]:
    argv = [CTL, "-q", "-n", env["RABBITMQ_NODENAME"], "list_queues", "-p", vhost, *COLUMNS]
    argv += ["--formatter", "json", "-t", str(TIMEOUT)]
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=TIMEOUT + 10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"rabbitmq: rabbitmqctl list_queues: {exc}") from exc
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise BrokerError(
            f"rabbitmq: rabbitmqctl list_queues: {said[0] if said else done.returncode}"
        )
    try:
        rows = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise BrokerError(f"rabbitmq: rabbitmqctl list_queues: not JSON ({exc})") from exc
    return {row["name"]: row for row in rows if isinstance(row, dict) and "name" in row}


def _flag(value: object) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def _arguments(raw: object) -> str:
    """x-arguments as the node holds them, [[name, type, value], ...]: 'name=value, ...'."""
    if not isinstance(raw, list):
        return str(raw)
    pairs = sorted(f"{item[0]}={item[-1]}" for item in raw if isinstance(item, list) and item)
    return ", ".join(pairs) or "none"
