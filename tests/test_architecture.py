"""docs/ARCHITECTURE.md's rooms, checked against the code.

The rooms are read from the document's table (one row per room, in order: a room may import
the rooms before it) and the allowed upward imports from its "Upward imports" list, so the
document and this check cannot drift apart. Every ``import`` of a ``distilkit`` module counts:
at module level, inside a function and under ``TYPE_CHECKING``; importing ``a.b.c`` also
imports the packages ``a.b``, as Python does.
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ARCHITECTURE.md"
MAX_UPWARD = 4
MAX_LINES = 400
MAX_NOTEBOOK_FUNCTIONS = 5


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((REPO / "distilkit").rglob("*.py"))}


def rooms(doc: str) -> list[list[str]]:
    """Each table row's modules (``keypoints.py`` -> ``keypoints``, ``data/`` -> ``data``)."""
    section = doc.split("## Rooms", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [[name.removesuffix(".py").rstrip("/") for name in re.findall(r"`([\w./]+)`", row.split("|")[1])]
            for row in rows]


def named_upward(doc: str) -> set[tuple[str, str]]:
    """The (importer, imported) pairs of the "Upward imports" list, ``distilkit.`` dropped."""
    section = doc.split("### Upward imports", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^- `([\w.]+)` → `([\w.]+)`", section, flags=re.M))


def room_of(module: str, table: list[list[str]]) -> int:
    top = module.split(".")[1]
    for index, names in enumerate(table):
        if top in names:
            return index
    raise AssertionError(f"{module} belongs to no room of {DOC.name}'s table: add it to a row")


def imported_modules(path: Path, name: str) -> list[tuple[str, int]]:
    """(distilkit module, line) for every import statement in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # an imported name: its module
                target = target.rpartition(".")[0]
            if target and target != "distilkit" and target != name:
                found.append((target, node.lineno))
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: line}, with the packages each import initialises."""
    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for name, path in MODULES.items():
        for target, line in imported_modules(path, name):
            graph[name].setdefault(target, line)
            parts = target.split(".")
            for k in range(2, len(parts)):
                package = ".".join(parts[:k])
                if package in MODULES and not name.startswith(package + "."):
                    graph[name].setdefault(package, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward_imports(table: list[list[str]]) -> dict[tuple[str, str], str]:
    """(importer, imported) without ``distilkit.`` -> where, for imports into a later room."""
    out = {}
    for name, path in MODULES.items():
        if name == "distilkit":
            continue
        for target, line in imported_modules(path, name):
            if room_of(target, table) > room_of(name, table):
                key = (name.removeprefix("distilkit."), target.removeprefix("distilkit."))
                out.setdefault(key, f"{path.relative_to(REPO)}:{line}")
    return out


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_module_is_in_a_room(doc):
    table = rooms(doc)
    assert len(table) >= 10
    for name in MODULES:
        if name != "distilkit":
            room_of(name, table)


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_upward_imports_are_the_named_ones(doc):
    found = upward_imports(rooms(doc))
    named = named_upward(doc)
    assert len(named) <= MAX_UPWARD, named
    assert set(found) == named, {"not named in the document": {k: v for k, v in found.items() if k not in named},
                                 "named but gone": named - set(found)}


def test_no_library_file_is_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_notebooks_define_at_most_five_functions():
    defined = {p.name: [n.name for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
               for p in sorted((REPO / "notebooks").glob("*.py"))}
    assert sum(len(names) for names in defined.values()) <= MAX_NOTEBOOK_FUNCTIONS, \
        {name: names for name, names in defined.items() if names}


# The checker itself, on made-up documents and graphs: it finds what it is meant to find.
def test_the_table_and_the_list_are_read_as_written():
    doc = ("## Rooms\n\n| room | holds |\n|---|---|\n| `paths.py`, `files.py` | x |\n| `data/` | y |\n"
           "\n### Upward imports\n\n- `data.x` → `viz.poses`: why\n\n## Next\n| `other.py` | z |\n")
    assert rooms(doc) == [["paths", "files"], ["data"]]
    assert named_upward(doc) == {("data.x", "viz.poses")}


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}, [["a", "b", "c"]]),
    ({"a": {"b": 1}, "b": {"c": 1}, "c": {}}, []),
])
def test_a_cycle_is_found(graph, expected):
    assert cycles(graph) == expected
