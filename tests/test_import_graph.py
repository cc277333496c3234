"""No import cycle anywhere in zephr_desktop/: data flows one way (DESIGN.md section 2).

Every import counts, including the ones inside functions (the lazy imports that keep ``token``
fast) and under ``TYPE_CHECKING``: a cycle through them is still two modules that need each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zephr_desktop"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from . import x`` names submodule x when there is one)."""
    files = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                targets = [
                    f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in files else origin for alias in node.names
                ]
            for target in targets:
                # `import zephr_desktop.a.b` needs the deepest module of the package it names.
                while target and target not in files and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in files and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_no_module_of_the_package_imports_itself_back() -> None:
    graph = import_graph()
    assert len(graph) > 20 and graph["zephr_desktop.cli"], "the graph did not find the package's imports"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_detector_finds_cycles_through_lazy_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "zephr_desktop"
    (package / "gui").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from .gui import app\n")
    (package / "gui" / "__init__.py").write_text("")
    (package / "gui" / "app.py").write_text("from ..b import x\n")
    (package / "b.py").write_text("import zephr_desktop.a\nx = 1\n")
    graph = import_graph(package)
    assert graph["zephr_desktop.a"] == {"zephr_desktop.gui.app"}
    assert graph["zephr_desktop.gui.app"] == {"zephr_desktop.b"}
    assert find_cycle(graph) == ["zephr_desktop.a", "zephr_desktop.gui.app", "zephr_desktop.b", "zephr_desktop.a"]
    (package / "b.py").write_text("x = 1\n")
    assert find_cycle(import_graph(package)) is None
