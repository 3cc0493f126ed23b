"""No import cycles inside tts_sim (backends/ and baselines/ included, as installed).

Imports are read with ``ast``: module-level ones (a cycle there can break ``import``), and also the
deferred ones inside functions (a cycle there still ties modules into one unit). Imports under
``if TYPE_CHECKING:`` are ignored. ``from pkg import name`` points at ``pkg.name`` when that is a module.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def package_modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file for tts_sim, following the symlinked backends/ and baselines/."""
    out = {}
    for folder, _, files in os.walk(root / "tts_sim", followlinks=True):
        for name in files:
            if name.endswith(".py"):
                parts = list(Path(folder).relative_to(root).parts)
                if name != "__init__.py":
                    parts.append(name[:-3])
                out[".".join(parts)] = Path(folder) / name
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, deferred: bool) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(nodes: list[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                visit(list(node.orelse))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if deferred or isinstance(node, ast.ClassDef):
                    visit(list(node.body))
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit(list(getattr(node, field, [])))

    visit(list(tree.body))
    return found


def import_graph(modules: dict[str, Path], deferred: bool) -> dict[str, set[str]]:
    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text()), deferred):
            if isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else resolve(base) for a in node.names]
            graph[mod] |= {t for t in targets if t and t != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.mark.parametrize("deferred", [False, True], ids=["module-level", "with-deferred"])
def test_no_import_cycles_in_tts_sim(deferred):
    modules = package_modules()
    assert "tts_sim.baselines.textgrad" in modules and "tts_sim.search.agent_api" in modules
    found = cycles(import_graph(modules, deferred))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_checker_finds_a_cycle(tmp_path):
    pkg = tmp_path / "tts_sim"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from tts_sim.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .a import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tts_sim.sub.a import y\n")
    modules = package_modules(tmp_path)
    assert cycles(import_graph(modules, deferred=False)) == []
    assert cycles(import_graph(modules, deferred=True)) == [["tts_sim.sub.a", "tts_sim.sub.b"]]
