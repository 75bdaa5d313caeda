"""PostgreSQL run as `postgres` (when the lab is root) must walk to its data dir: a parent
it cannot enter is named with its mode, its owner and the chmod that opens it, whatever
the path (a 0700 mktemp dir under /tmp is as closed as /root). As any user: the broker
below is told to run as `postgres`, as it does under root."""

import os
import pwd
import tempfile
from pathlib import Path

import pytest

from lab import brokers as registry
from lab.brokers.postgres.native import OS_USER, PostgresBroker
from lab.errors import LabError
from lab.settings import Settings


class AsPostgres(PostgresBroker):
    run_as = OS_USER  # what root's lab does; a non-root lab runs it as itself


def broker_under(parent: Path) -> AsPostgres:
    settings = Settings(state_dir=parent / "s", port_base=27000, cache_dir=parent / "cache")
    return AsPostgres(settings, registry.get("postgres"))


@pytest.fixture
def closed():
    parent = Path(tempfile.mkdtemp(dir="/tmp"))  # 0700, as mktemp -d makes it
    try:
        yield parent
    finally:
        parent.chmod(0o700)
        for path in sorted(parent.rglob("*"), reverse=True):
            path.rmdir()
        parent.rmdir()


def test_a_closed_parent_under_tmp_is_named_with_its_mode_and_owner(closed):
    broker = broker_under(closed)
    broker.dir.mkdir(parents=True)
    with pytest.raises(LabError) as err:
        broker._check_reachable()
    owner = pwd.getpwuid(os.getuid()).pw_name
    assert str(err.value) == (
        f"PostgreSQL runs as user 'postgres', which cannot enter {closed} (mode 0700, owner"
        f" {owner}): chmod o+x {closed}, or set LAB_STATE_DIR to a directory 'postgres' can"
        " reach"
    )
    assert "/var/lib or /tmp" not in str(err.value)


def test_a_parent_others_may_enter_is_fine(closed):
    closed.chmod(0o711)
    broker = broker_under(closed)
    broker.dir.mkdir(parents=True)
    broker._check_reachable()
