"""RabbitMQ: its own Erlang node, cookie, epmd and distribution port, all on loopback."""

import glob
import re
import secrets
from pathlib import Path

from lab.brokers.rabbitmq.options import USER
from lab.runtimes.native.processes import ProcessSpec
from lab.runtimes.native.spec import SETUP_HINT, NativeBroker, which, write_private

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def _epmd() -> str | None:
    return which("epmd", *sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd")))


class RabbitMQBroker(NativeBroker):
    start_timeout = 60.0
    stop_timeout = 30.0

    def missing(self) -> str | None:
        if not Path(SERVER).exists():
            return f"RabbitMQ is not installed: {SETUP_HINT} (or: apt-get install rabbitmq-server)"
        if not _epmd():
            return f"Erlang's epmd is not installed: {SETUP_HINT} (or: apt-get install erlang-base)"
        return None

    def version(self) -> str | None:
        found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*"))
        match = re.search(r"rabbitmq_server-(.+)$", found[-1]) if found else None
        return match.group(1) if match else None

    def prepare(self) -> None:
        home = self.dir / "home"
        for d in (self.data_dir, home, self.dir / "log"):
            d.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            write_private(cookie, secrets.token_hex(20))
            cookie.chmod(0o400)  # Erlang refuses a cookie that others can read
        # default_user replaces `guest` on the node's first boot; the password is generated.
        write_private(
            self.dir / "rabbitmq.conf",
            "\n".join(
                [
                    f"listeners.tcp.1 = 127.0.0.1:{self.port}",
                    f"default_user = {USER}",
                    f"default_pass = {self.secret()}",
                    "loopback_users = none",
                    "log.console = true",
                    "log.console.level = info",
                    "log.file = false",
                    # Four brokers share the machine: keep RabbitMQ's memory alarm well
                    # below its default 40% of RAM.
                    "vm_memory_high_watermark.relative = 0.25",
                    "",
                ]
            ),
        )
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")

    def processes(self) -> list[ProcessSpec]:
        epmd_port = self.settings.port("rabbitmq-epmd")
        epmd_env = {"ERL_EPMD_PORT": str(epmd_port), "ERL_EPMD_ADDRESS": "127.0.0.1"}
        env = {
            **epmd_env,
            "HOME": str(self.dir / "home"),
            "RABBITMQ_NODENAME": "lab@localhost",
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.data_dir),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
            "RABBITMQ_DIST_PORT": str(self.settings.port("rabbitmq-dist")),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            # Makes the start script exec the Erlang VM instead of wrapping it in a shell, so
            # the pid the lab tracks is the broker itself and SIGTERM/SIGSTOP reach it.
            "RUNNING_UNDER_SYSTEMD": "true",
        }
        return [
            # The lab's own epmd, in the foreground so it is tracked and stopped with the node.
            ProcessSpec(
                "epmd",
                [_epmd() or "epmd", "-port", str(epmd_port), "-address", "127.0.0.1"],
                env=epmd_env,
                ready_port=epmd_port,
            ),
            ProcessSpec("rabbitmq-server", [SERVER], env=env, cwd=self.dir),
        ]
