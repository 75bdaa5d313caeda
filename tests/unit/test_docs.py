"""The docs keep up with the brokers: a broker package the README's table, the compose
README or the design's tree leaves out is a broker users cannot find."""

import re

import pytest

from lab import brokers as registry
from tests.helpers import REPO

PACKAGES = sorted(p.parent.name for p in (REPO / "lab" / "brokers").glob("*/__init__.py"))


def section(text: str, heading: str) -> str:
    """From `heading` to the next second-level heading."""
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end > 0 else None]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_broker_package_is_in_the_design_tree(name):
    tree = section((REPO / "docs" / "design.md").read_text(), "## The tree")
    assert re.search(rf"(^|\s){name}/", tree), f"docs/design.md's tree leaves out {name}/"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_broker_has_a_row_in_the_readme_table(name):
    plugin = registry.get(name)
    table = section((REPO / "README.md").read_text(), "| broker | native version |")
    lines = table[: table.index("\n\n")].splitlines()
    rows = [line for line in lines if line.startswith("| ") and name in line.split("|")[1].lower()]
    assert rows, f"README.md's broker table has no row for {name}"
    if plugin.emulates:
        assert f"(`{name}`)" in rows[0] and "emulates" in rows[0], rows[0]
        assert not plugin.default, "README.md says the emulators are not in the default set"


@pytest.mark.parametrize("name", PACKAGES)
def test_the_compose_readme_points_the_lab_at_every_container(name):
    scheme = registry.get(name).schemes[0]
    text = (REPO / "compose" / "README.md").read_text()
    assert re.search(rf'--broker-url "?{re.escape(scheme)}://', text), (
        f"compose/README.md gives no URL for {name}"
    )
