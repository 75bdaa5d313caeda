"""PostgreSQL: its own cluster (initdb) on a loopback port, run as `postgres` when root."""

import glob
import os
import pwd
import re
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

from lab.brokers.postgres.options import SUPERUSER
from lab.errors import LabError
from lab.runtimes.native.processes import ProcessSpec
from lab.runtimes.native.spec import SETUP_HINT, NativeBroker, first_line, which

OS_USER = "postgres"


def _bindir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(re.search(r"/(\d+)/bin", p).group(1)),
    )
    if found:
        return Path(found[-1]).parent
    pg_config = which("pg_config")
    if pg_config:
        bindir = Path(first_line([pg_config, "--bindir"]))
        if (bindir / "postgres").exists():
            return bindir
    return None


class PostgresBroker(NativeBroker):
    start_timeout = 30.0
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for every client
    stop_timeout = 30.0

    @property
    def run_as(self) -> str | None:
        return OS_USER if os.geteuid() == 0 else None

    def missing(self) -> str | None:
        if not _bindir():
            return f"PostgreSQL is not installed: {SETUP_HINT} (or: apt-get install postgresql)"
        if self.run_as:
            try:
                pwd.getpwnam(self.run_as)
            except KeyError:
                return (
                    f"the '{self.run_as}' user that PostgreSQL runs as does not exist: "
                    f"{SETUP_HINT} (or: apt-get install postgresql)"
                )
        return None

    def version(self) -> str | None:
        bindir = _bindir()
        line = first_line([str(bindir / "postgres"), "--version"]) if bindir else ""
        match = re.search(r"(\d+\.\d+)", line)
        return match.group(1) if match else None

    def _check_reachable(self) -> None:
        """As root, PostgreSQL runs as `postgres`, which must be able to walk to its data dir."""
        if not self.run_as:
            return
        account = pwd.getpwnam(self.run_as)
        groups = {account.pw_gid, *os.getgrouplist(self.run_as, account.pw_gid)}
        for parent in reversed(self.dir.parents):  # from / down: the first closed one
            st = parent.stat()
            bit = _missing_x(st, account.pw_uid, groups)
            if bit:
                raise LabError(
                    f"PostgreSQL runs as user '{self.run_as}', which cannot enter {parent} "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}, owner {_owner(st.st_uid)}): "
                    f"chmod {bit} {parent}, or set LAB_STATE_DIR to a directory "
                    f"'{self.run_as}' can reach"
                )

    def prepare(self) -> None:
        # Made first, so the check sees every parent, also those made now under a umask.
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self._check_reachable()
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(exist_ok=True)
        self.data_dir.chmod(0o700)
        account = pwd.getpwnam(self.run_as) if self.run_as else None
        if account:
            os.chown(self.data_dir, account.pw_uid, account.pw_gid)
        # initdb reads the superuser's password from a file, never from the command line.
        with tempfile.NamedTemporaryFile("w", dir=self.dir, delete=False) as pwfile:
            pwfile.write(self.secret() + "\n")
        try:
            if account:
                os.chown(pwfile.name, account.pw_uid, account.pw_gid)
            argv = [
                str(_bindir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile.name}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ]
            kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            with open(self.log_path, "ab") as log:
                done = subprocess.run(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    check=False,
                    **(kwargs if account else {}),
                )
        finally:
            os.unlink(pwfile.name)
        if done.returncode != 0:
            raise LabError(f"initdb failed for the lab's PostgreSQL: see {self.log_path}")

    def processes(self) -> list[ProcessSpec]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            # TCP only: no socket file in a directory the lab does not own.
            "unix_socket_directories": "",
            "max_connections": "200",
            "shared_buffers": "256MB",
            "max_wal_size": "1GB",
            "logging_collector": "off",
        }
        argv = [str(_bindir() / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return [ProcessSpec("postgres", argv, user=self.run_as, cwd=self.dir)]


def _missing_x(st: os.stat_result, uid: int, groups: set[int]) -> str | None:
    """The chmod that would let the user search the directory (u+x, g+x or o+x), or None
    if it may. Only the class the user falls in counts (owner, else group, else others),
    as in the kernel: a 0707 directory is closed to its group."""
    if st.st_uid == uid:
        return None if st.st_mode & stat.S_IXUSR else "u+x"
    if st.st_gid in groups:
        return None if st.st_mode & stat.S_IXGRP else "g+x"
    return None if st.st_mode & stat.S_IXOTH else "o+x"


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
