"""docs/ARCHITECTURE.md stays a true map of the code, and app code has no import circles.

The map: every path it names in backticks (`calls/live.py`, `calls/actions/`) exists, and every
module of an app package is on it by its path: each .py file directly in an app package or in
one of its sub-packages (migrations and management commands aside), and each sub-package as
`dir/`. A module added, moved or split (a file becoming a package) fails here until the map says
where it went and what it does.

The circles: module-level imports between app modules (imports inside functions and under
``if TYPE_CHECKING:`` aside) form no cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "docs" / "ARCHITECTURE.md"
APPS = ("agents", "audit", "calls", "contactcenter", "demo", "realtime")
NOT_MAPPED = {"migrations", "management", "__pycache__"}  # Django's conventions, named in prose

# A backticked path starting at an app package, ending in ".py" or "/": `calls/live.py`, `calls/actions/`.
NAMED = re.compile(r"`((?:" + "|".join(APPS) + r")(?:/[\w.]+)*(?:\.py|/))`")


def packages() -> list[Path]:
    """Each app package and each of its sub-packages (a folder with an __init__.py)."""
    found = []
    for app in APPS:
        for init in sorted((ROOT / app).rglob("__init__.py")):
            folder = init.parent
            if not NOT_MAPPED & set(folder.relative_to(ROOT).parts):
                found.append(folder)
    return found


def expected_on_map() -> set[str]:
    names = set()
    for folder in packages():
        names.add(folder.relative_to(ROOT).as_posix() + "/")
        names.update(f.relative_to(ROOT).as_posix() for f in folder.glob("*.py") if f.name != "__init__.py")
    return names


def named_on_map() -> set[str]:
    return set(NAMED.findall(MAP.read_text()))


def test_every_path_on_the_map_exists() -> None:
    missing = sorted(name for name in named_on_map() if not (ROOT / name).exists())
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_every_module_is_on_the_map() -> None:
    left_off = sorted(expected_on_map() - named_on_map())
    assert not left_off, f"modules missing from docs/ARCHITECTURE.md (name them by path, with a few words): {left_off}"


def test_the_map_test_sees_the_tree() -> None:
    """Guards the two checks above against passing on an empty set."""
    expected = expected_on_map()
    assert {"calls/live.py", "calls/actions/", "realtime/server/app.py", "realtime/offline/policy/"} <= expected
    assert not any("migrations" in name for name in expected)


# --- import circles ------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def app_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts and "__pycache__" not in path.parts:
                modules[module_name(path)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported: top level, and inside top-level if/try/with blocks."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                pending.extend(node.body)
            pending.extend(node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                pending.extend(handler.body)
        elif isinstance(node, ast.With):
            pending.extend(node.body)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = app_modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _module_level_imports(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base]) if base else ".".join(anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                resolved = resolve(target)
                if resolved is not None and resolved != name:
                    graph[name].add(resolved)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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


def test_no_import_circles_in_app_code() -> None:
    graph = import_graph()
    assert len(graph) > 50 and graph["calls.bridge"], "the import graph was not read"
    found = circles(graph)
    assert not found, f"module-level import circles: {found}"


def test_the_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
