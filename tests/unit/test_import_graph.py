"""No import circle inside ``costs/``, ``ledger/`` or ``sandbox/``; no module there over
~400 lines.

The graph is built from the source with :mod:`ast`. Every ``import`` and ``from ...
import`` counts wherever it is written: at module level, inside a function, and
under ``if TYPE_CHECKING:``. An edge goes to the most specific module named:
``from pkg import mod`` is an edge to ``pkg.mod`` (``pkg/__init__`` is not counted
for it, as Python imports a parent package before its child anyway); ``from pkg
import name`` where ``name`` is not a module is an edge to ``pkg`` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "wflo_prefect"
PACKAGES = ("approvals", "compensation", "costs", "ledger", "observability", "policies", "sandbox")
MAX_LINES = 400


def _modules() -> dict[str, tuple[Path, bool]]:
    modules: dict[str, tuple[Path, bool]] = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules[".".join(parts)] = (path, is_package)
    return modules


def _targets(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> list[str]:
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base) + (f".{node.module}" if node.module else "")
        else:
            target = node.module or ""
        submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
        names.extend(submodules)
        if len(submodules) < len(node.names):
            names.append(target)
    resolved = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            resolved.append(name)
    return resolved


def import_graph() -> dict[str, set[str]]:
    """Each ``wflo_prefect`` module -> the ``wflo_prefect`` modules it imports."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges.update(t for t in _targets(module, is_package, node, known) if t != module)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]], within: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), within ``within``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node] & within):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(within):
        if node not in index:
            visit(node)
    return found


def _in_packages(graph: dict[str, set[str]]) -> set[str]:
    prefixes = tuple(f"wflo_prefect.{p}" for p in PACKAGES)
    return {m for m in graph if m == prefixes or m.startswith(prefixes)}


def test_the_graph_sees_every_kind_of_import() -> None:
    """The checker itself: function-level and TYPE_CHECKING imports are edges."""
    graph = import_graph()
    # costs.prices imports genai-prices' data inside functions, and the ledger's
    # repositories name the database under TYPE_CHECKING only.
    assert "wflo_prefect.ledger.database" in graph["wflo_prefect.ledger.policies"]
    assert "wflo_prefect.costs.price_refresh" in graph["wflo_prefect.costs.prices"]
    assert "wflo_prefect.sandbox.pool_source" in graph["wflo_prefect.sandbox.sandbox"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, {"a", "b", "c", "d"}) == [
        ["a", "b", "c"]
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle(package: str) -> None:
    graph = import_graph()
    within = {m for m in graph if m.startswith(f"wflo_prefect.{package}")}
    assert within, package
    circles = cycles(graph, within)
    detail = [{m: sorted(graph[m] & set(c)) for m in c} for c in circles]
    assert circles == [], f"import circles in {package}/: {detail}"


@pytest.mark.parametrize("package", ["costs", "ledger"])
def test_no_module_over_the_size_limit(package: str) -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / package).rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}
