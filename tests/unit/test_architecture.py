"""The import graph of ``src/ragship`` has no cycle: nothing low imports anything high.

Imports inside functions count: a lazy import hides a circle from the interpreter, not from the design.
"""

from __future__ import annotations

import ast
from collections import deque
from itertools import pairwise
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = "ragship"

# A circle lying wholly inside one of these sets is tolerated until the change named in its comment lands.
KNOWN_CYCLES: list[frozenset[str]] = []

Graph = dict[str, dict[str, int]]  # module -> {imported module: line of the first import}


def module_files(src: Path = SRC) -> dict[str, Path]:
    """Every module under ``src/ragship`` by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted((src / ROOT).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _named_modules(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """Dotted names an import statement may load (``from a import b`` may load the module ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: ``from .x import y`` inside ``package``
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join([*base, node.module] if node.module else base)
    else:
        module = node.module or ""
    return [module, *(f"{module}.{alias.name}" for alias in node.names)]


def import_graph(src: Path = SRC) -> Graph:
    """Which ragship module imports which, at module level or inside functions, parent packages included.

    Importing ``ragship.a.b`` runs ``ragship/a/__init__.py`` first, so it is an edge to ``ragship.a`` too,
    except from a module inside ``ragship.a``: its own packages have started before its body runs (they
    are what imported it, or were run on the way to it), so that implied edge is the normal package
    layout, not a circle. An explicit ``from ragship.a import x`` inside ``ragship.a`` still counts:
    that is the package face being imported back. The root package is every module's ancestor.
    """
    modules = module_files(src)
    graph: Graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _named_modules(node, package):
                if target not in modules:
                    continue
                parts = target.split(".")
                implied = [p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p not in own_packages]
                for imported in [*implied, target]:
                    if imported != name:
                        edges.setdefault(imported, node.lineno)
        graph[name] = edges
    return graph


def _reachable(graph: Graph, start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _shortest_cycle(graph: Graph, start: str, within: set[str]) -> list[str]:
    """The shortest path ``start -> ... -> start`` through ``within`` (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node]):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt in within and nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{start} is on no cycle")


def import_circles(graph: Graph) -> list[set[str]]:
    """The sets of modules that import each other, directly or not (strongly connected components)."""
    reach = {name: _reachable(graph, name) for name in graph}
    circles: list[set[str]] = []
    for name in sorted(graph):
        if any(name in circle for circle in circles):
            continue
        circle = {other for other in reach[name] if name in reach[other]}
        if len(circle) > 1:
            circles.append(circle)
    return circles


def _known(circle: set[str]) -> bool:
    return any(circle <= known for known in KNOWN_CYCLES)


def describe(circle: set[str], graph: Graph) -> str:
    """One shortest cycle of ``circle`` as ``a -> b -> a`` with the file and line of each import."""
    files = module_files()
    # Start outside the tolerated circles, so the cycle shown is the new one.
    start = min(circle, key=lambda name: (any(name in known for known in KNOWN_CYCLES), name))
    cycle = _shortest_cycle(graph, start, circle)
    steps = [f"{a} -> {b}  ({files[a].relative_to(SRC.parent)}:{graph[a][b]})" for a, b in pairwise(cycle)]
    return " -> ".join(cycle) + "\n    " + "\n    ".join(steps) + f"\n  (modules in this circle: {sorted(circle)})"


def test_the_graph_sees_function_level_imports_and_parent_packages(tmp_path: Path) -> None:
    # Guards the guard: a parser that missed lazy imports or parent packages would report no cycle.
    files = {
        "__init__.py": "",
        "low.py": "def f():\n    from ragship.high.model import Model\n",
        "high/__init__.py": "from . import model\n",
        "high/model.py": "import ragship.low\n",
    }
    for name, text in files.items():
        (tmp_path / ROOT / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / ROOT / name).write_text(text)
    graph = import_graph(tmp_path)
    assert graph["ragship.low"] == {"ragship.high": 2, "ragship.high.model": 2}
    assert graph["ragship.high"] == {"ragship.high.model": 1}
    assert import_circles(graph) == [{"ragship.low", "ragship.high", "ragship.high.model"}]


def test_a_submodule_importing_its_own_package_face_is_an_edge_its_siblings_are_not(tmp_path: Path) -> None:
    files = {
        "__init__.py": "",
        "stores/__init__.py": "from ragship.stores.a import A\nfrom ragship.stores.b import B\n",
        "stores/base.py": "",
        "stores/a.py": "from ragship.stores.base import X\n",  # the usual layout: no circle
        "stores/b.py": "from ragship.stores import A\n",  # the package face imported back: a circle
    }
    for name, text in files.items():
        (tmp_path / ROOT / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / ROOT / name).write_text(text)
    graph = import_graph(tmp_path)
    assert graph["ragship.stores.a"] == {"ragship.stores.base": 1}
    assert import_circles(graph) == [{"ragship.stores", "ragship.stores.b"}]


def test_no_import_cycles() -> None:
    graph = import_graph()
    circles = [circle for circle in import_circles(graph) if not _known(circle)]
    assert not circles, "import cycles in src/ragship:\n" + "\n".join(describe(c, graph) for c in circles)


def test_spec_models_registered_before_the_tracking_split_still_unpickle() -> None:
    import pickle

    from ragship.tracking.spec_model import RagshipModel

    # What an older registered model's python_model.pkl refers to: the class by its old module path.
    old_reference = b"cragship.serving_model\nRagshipModel\n."
    assert pickle.loads(old_reference) is RagshipModel
