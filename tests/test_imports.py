"""The import graph: no module imports, through others, one that imports it, and what runs
inside a task (``lstm_worker``) imports neither the driver (``cluster``) nor ray nor click.

Every ``import`` and ``from ... import`` of every module counts, those under
``TYPE_CHECKING`` and inside functions too: a layer that needs another only for a type
hint still depends on it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cluster", "lstm_worker")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The modules ``path`` imports: of this project (by module), or any other (its top)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package up
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle among the project's modules, as a path back to its start; []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node] & graph.keys()):
            if nxt == node:
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_no_module_imports_itself_through_others():
    cycle = _cycle(_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_task_side_imports_neither_the_driver_nor_ray_nor_click():
    graph = _graph()
    bad = {
        name: sorted(d for d in deps if d.split(".")[0] in ("cluster", "ray", "click"))
        for name, deps in graph.items()
        if name.split(".")[0] == "lstm_worker"
    }
    assert not {name: deps for name, deps in bad.items() if deps}


def test_the_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "numpy"}, "b": set()}) == []


def test_no_driver_module_loads_torch():
    """The driver (every module of ``cluster``) imports without torch: torch loads in the
    Ray task (``lstm_worker.shard``), or in a driver function that asks for a model."""
    names = sorted(n for n in _modules() if n.split(".")[0] == "cluster" and "__main__" not in n)
    code = f"import importlib, sys\nfor n in {names!r}: importlib.import_module(n)\n"
    code += "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout
