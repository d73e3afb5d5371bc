"""The shape of the package: modules short enough to read in one sitting, no import cycles, and
SQL only in the repositories (store/ and the outbox contract)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "monitor"
MAX_LINES = 450

# The settings module may be longer while it stays one declarative model.
SETTINGS_MODULE = "config.py"

# Outside the repositories, only these may be imported from SQLAlchemy: the types that pass a
# session or an engine along, its errors, and the ORM's way to set a loaded value.
ALLOWED_SQLALCHEMY = {"Engine", "Session", "sessionmaker", "DBAPIError", "set_committed_value"}
# Calls that read or write rows; only a repository makes them.
QUERY_CALLS = {"execute", "scalars", "scalar", "query", "add", "add_all", "merge", "delete", "get"}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_longer_than_the_limit() -> None:
    long = {relative(path): line_count(path) for path in modules().values() if line_count(path) > MAX_LINES}
    long.pop(SETTINGS_MODULE, None)
    assert long == {}, f"split these modules (at most {MAX_LINES} lines each): {long}"


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that NAME imports, anywhere in it (type-only and deferred included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            # `from monitor import outbox` imports the module monitor.outbox.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in known and module != name}


def test_no_import_cycle() -> None:
    known = modules()
    graph = {name: imports_of(name, path, set(known)) for name, path in known.items()}
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_only_repositories_write_sql() -> None:
    offenders = []
    for name, path in modules().items():
        where = relative(path)
        if where.startswith("store/") or where == "outbox.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                offenders += [f"{where}: imports {a.name}" for a in node.names if a.name not in ALLOWED_SQLALCHEMY]
            elif isinstance(node, ast.Import):
                offenders += [f"{where}: imports {a.name}" for a in node.names if a.name.startswith("sqlalchemy")]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in QUERY_CALLS
                and isinstance(node.func.value, ast.Name)
                and ("session" in node.func.value.id or "connection" in node.func.value.id)
            ):
                offenders.append(f"{where}:{node.lineno}: {node.func.value.id}.{node.func.attr}()")
    assert offenders == [], "SQL outside store/ and outbox.py: " + "; ".join(offenders)


def test_the_checks_see_what_they_look_for() -> None:
    """The cycle and SQL checks find what they are meant to find (else they pass vacuously)."""
    known = modules()
    assert "monitor.outbox" in imports_of("monitor.process.followups", known["monitor.process.followups"], set(known))
    assert "monitor.store.models" in imports_of("monitor.outbox", known["monitor.outbox"], set(known))
    # The store's own modules do write SQL, and the check would see it there.
    store_calls = [
        node
        for node in ast.walk(ast.parse(known["monitor.store.verdicts"].read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in QUERY_CALLS
    ]
    assert store_calls


@pytest.mark.parametrize(
    "check",
    [["format", "--check"], ["check", "--select", "E501"]],
    ids=["formatted", "lines-fit-120"],
)
def test_the_code_is_formatted_and_its_lines_fit(check: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *check, "monitor", "tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
