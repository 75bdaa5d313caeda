"""The shape of the code: what keeps the next broker one folder and every module readable.

- Outside lab/brokers/<name>/, a broker's name is written in the code (not comments or
  docstrings) of at most MAX_FILES_NAMING_A_BROKER files of lab/ and tui/.
- No import cycles in lab/ and tui/, counting imports inside functions too (they are
  dependencies all the same), but not those under `if TYPE_CHECKING:`.
- No module is longer than MAX_LINES.
"""

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

from lab import brokers as registry
from tests.helpers import REPO

MAX_FILES_NAMING_A_BROKER = 2
MAX_LINES = 450
ROOTS = ("lab", "tui")


def sources() -> Iterator[Path]:
    for root in ROOTS:
        yield from sorted((REPO / root).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_words(path: Path) -> set[str]:
    """Every word of the file's names and string literals, comments and docstrings left out."""
    text = path.read_text()
    skip = docstring_lines(ast.parse(text))
    words: set[str] = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in (tokenize.NAME, tokenize.STRING) or tok.start[0] in skip:
            continue
        words.update(re.split(r"[^a-z0-9]+", tok.string.lower()))
    return words


def files_naming(broker: str) -> list[str]:
    own = REPO / "lab" / "brokers" / broker
    return [
        str(path.relative_to(REPO))
        for path in sources()
        if own not in path.parents and broker in code_words(path)
    ]


def test_a_broker_is_named_only_in_its_own_package():
    found = {name: files_naming(name) for name in registry.names()}
    over = {name: files for name, files in found.items() if len(files) > MAX_FILES_NAMING_A_BROKER}
    assert not over, f"brokers named in more than {MAX_FILES_NAMING_A_BROKER} files: {over}"


def imports(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports, anywhere but under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
    return found & known


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    paths = {module_name(p): p for p in sources()}
    known = set(paths)
    graph = {name: imports(path, known) - {name} for name, path in paths.items()}
    assert not cycles(graph), cycles(graph)


def test_no_module_is_too_long():
    long = {
        str(p.relative_to(REPO)): n
        for p in sources()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
