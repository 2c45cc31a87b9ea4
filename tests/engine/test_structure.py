"""The import graph of the plugin: layers point down (QGIS plugin -> algorithms -> engine), nothing goes round.

Read from the source (every import, also those inside functions), so nothing is imported here.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "algorithms", "mcpn_plugin")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The repository modules ``path`` imports (dotted names relative to the repository root)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("mcpn."):
                stem = node.module[len("mcpn.") :]
            else:
                continue
            found |= {f"{stem}.{alias.name}" for alias in node.names} | {stem}
    return found


def graph() -> dict[str, set[str]]:
    files = [path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))]
    modules = {module_name(path): path for path in files}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def unit(module: str) -> str:
    """The layer part a module belongs to: ``core.model`` for core's sub-packages, else its package or module."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "core" else parts[0]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected components of more than one node), by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_layers_point_down():
    edges = graph()
    assert {"core.config", "algorithms.base", "mcpn_plugin.provider"} <= set(edges)
    up = {
        (module, imported)
        for module, imported_set in edges.items()
        for imported in imported_set
        if (module.startswith("core") and not imported.startswith("core"))
        or (module.startswith("algorithms") and imported.startswith("mcpn_plugin"))
    }
    assert not up, f"imports pointing up a layer: {sorted(up)}"


def test_no_import_goes_round_in_a_circle():
    edges = graph()
    units: dict[str, set[str]] = {}
    for module, imported in edges.items():
        units.setdefault(unit(module), set()).update(unit(m) for m in imported if unit(m) != unit(module))
    assert cycles(edges) == []
    assert cycles(units) == [], "packages importing each other"


def test_the_check_finds_circles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
