"""The domain library's packages and modules form layers: no two of them import each other,
directly or around a longer loop. Imports are read from the source (``ast``), so an import made
only for type checking or inside a function counts too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import momentum_domain

ROOT = Path(momentum_domain.__file__).parent
PREFIX = "momentum_domain."


def _unit(module: str) -> str | None:
    """The package or root module of the library that ``module`` belongs to."""
    if not module.startswith(PREFIX):
        return None
    return module.removeprefix(PREFIX).split(".")[0]


def _imported(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # `from momentum_domain import catalog` names the package in the alias.
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Each unit (a package or root module) and the other units it imports."""
    units = {path.name.removesuffix(".py") for path in ROOT.iterdir()}
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] == "migrations":
            continue
        unit = relative.parts[0].removesuffix(".py")
        targets = graph.setdefault(unit, set())
        for module in _imported(ast.parse(path.read_text(), str(path))):
            target = _unit(module)
            if target in units and target != unit:
                targets.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        for target in graph.get(unit, ()):
            if target not in index:
                visit(target)
                low[unit] = min(low[unit], low[target])
            elif target in stack:
                low[unit] = min(low[unit], index[target])
        if low[unit] == index[unit]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == unit:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for unit in sorted(graph):
        if unit not in index:
            visit(unit)
    return found


def test_the_graph_sees_the_imports() -> None:
    graph = import_graph()
    assert "catalog" in graph["learning"]
    assert "kit" in graph["learning"]


def test_the_cycle_finder_finds_loops() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_two_units_import_each_other() -> None:
    assert cycles(import_graph()) == []
