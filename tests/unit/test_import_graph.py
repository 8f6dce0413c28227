"""The package's import graph: no cycle between modules, and the layers import one way.

Every ``import`` and ``from ... import`` in every module of ``cimphys/`` counts, at module level
or inside a function: an import deferred into a function to dodge a cycle is still a cycle. An
edge goes to the module named (``from .x import y`` is an edge to ``x``, or to ``x.y`` when that
is a module); the implicit import of a parent package does not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cimphys

PACKAGE = Path(cimphys.__file__).parent

#: Layers, lowest first: a module may import its own layer or a lower one, never a higher one.
LAYERS = ("cimphys.devices", "cimphys.circuits", "cimphys.layers")


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["cimphys", *path.relative_to(PACKAGE).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """``{module: {imported module: line}}`` over every module of the package."""
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rsplit(".", 1)[0]
        edges = graph.setdefault(name, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    child = f"{target}.{alias.name}"
                    hit = child if child in modules else target if target in modules else None
                    if hit:
                        edges.setdefault(hit, node.lineno)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        edges.setdefault(alias.name, node.lineno)
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[frozenset]:
    """The cycles of ``graph``: its strongly connected components of more than one module
    (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
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
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert strongly_connected(graph) == [frozenset("abc")]
    assert strongly_connected({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycle():
    cycles = [sorted(c) for c in strongly_connected(import_graph())]
    assert not cycles, f"import cycles: {cycles}"


def test_layers_import_one_way():
    graph = import_graph()
    rank = {layer: k for k, layer in enumerate(LAYERS)}

    def layer(module):
        return next((lay for lay in LAYERS if module == lay or module.startswith(lay + ".")), None)

    upward = [(m, t, line) for m, edges in graph.items() for t, line in edges.items()
              if layer(m) and layer(t) and rank[layer(t)] > rank[layer(m)]]
    assert not upward, f"imports that run up the layers (module, target, line): {upward}"


def test_modules_import_only_public_names_of_each_other():
    """What a module needs from another is public there (or the boundary between them is wrong)."""
    found = set()
    for name, (path, is_package) in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            internal = isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("cimphys"))
            if internal and node.module != "__future__":
                found |= {(name, a.name) for a in node.names if a.name.startswith("_") and not a.name.startswith("__")}
    assert not found, f"private names imported across modules: {sorted(found)}"
