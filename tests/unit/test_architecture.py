"""The house rules of docs/architecture.md, read off the source with `ast` (nothing is imported): no import
circles, a pure core, tools outside the core, metrics that only read, small modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
MAX_MODULE_LINES = 500
# still to split (issue 14's note): each may shrink, none may grow, and no other module may join them
# the composition root: the only modules of the app that may wire in the tools outside the core
WIRING = {"app", "app.platform.commands"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(APP.rglob("*.py"))}


def _imported(tree: ast.AST, this: str, is_package: bool) -> Iterator[str]:
    """Every name an import statement imports (at any depth; not under `if TYPE_CHECKING:`): `from p import m`
    names `p.m`, which `_graph` resolves to the module `p.m` when there is one, else to the package `p`."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            skip.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = this if is_package else this.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for target in _imported(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py"):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


GRAPH = _graph()


def test_the_checker_finds_a_circle_it_is_shown() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles_among_the_apps_modules() -> None:
    assert _circles(GRAPH) == []


@pytest.mark.parametrize("core", ["app.domain", "app.state_machine"])
def test_the_core_imports_neither_flask_nor_sqlalchemy(core: str) -> None:
    for name, path in _modules().items():
        if name == core or name.startswith(core + "."):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            frameworks = {
                t
                for t in _imported(tree, name, path.name == "__init__.py")
                if t.split(".")[0] in {"flask", "flask_admin", "sqlalchemy"}
            }
            assert not frameworks, f"{name} imports {sorted(frameworks)}"


def _importers_of(package: str) -> set[str]:
    return {
        name
        for name, targets in GRAPH.items()
        if any(t == package or t.startswith(package + ".") for t in targets)
        and not (name == package or name.startswith(package + "."))
    }


def test_the_tools_outside_the_core_are_imported_only_by_the_wiring() -> None:
    outside = ("app.sandbox", "app.tools")
    for package in outside:
        importers = {n for n in _importers_of(package) if not n.startswith(outside)}
        assert importers <= WIRING, f"{package} imported by {sorted(importers - WIRING)}"


def test_metrics_and_readiness_are_imported_only_by_their_pages() -> None:
    importers = _importers_of("app.ops")
    assert importers <= {"app", "app.admin"}, f"app.ops imported by {sorted(importers)}"


def test_no_module_is_over_the_size_limit() -> None:
    long = {
        name: lines
        for name, path in _modules().items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
