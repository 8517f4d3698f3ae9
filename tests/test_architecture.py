"""The house's shape: layers that read top to bottom, no cycles, every module importable alone.

The layers, bottom to top (a module may import crmlab modules of its own layer or below,
never above; within a layer the graph has no cycle):

0. foundation: ``crmlab._version``, ``crmlab.schema``, ``crmlab.settings``, ``crmlab.privacy``
1. presentation primitives: ``crmlab.present`` (the formatter, the Result base, charts, CSV)
2. ingest and engine: ``crmlab.ingest``, ``crmlab.engine``
3. statistics: ``crmlab.stats``
4. analyses: ``crmlab.analyses``, ``crmlab.clv``, ``crmlab.experiments``, ``crmlab.promotion``,
   ``crmlab.simulate``
5. reports: ``crmlab.report`` (notebook helpers, HTML, the runner)
6. entry points: ``crmlab.api``, ``crmlab.cli``, ``crmlab`` itself

Function-level imports count: an import of a crmlab module inside a function is an edge
like any other, and is not allowed at all (only heavy third-party libraries may be imported
lazily).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "crmlab"

LAYERS = [
    ("crmlab._version", "crmlab.schema", "crmlab.settings", "crmlab.privacy"),
    ("crmlab.present",),
    ("crmlab.ingest", "crmlab.engine"),
    ("crmlab.stats",),
    ("crmlab.analyses", "crmlab.clv", "crmlab.experiments", "crmlab.promotion", "crmlab.simulate", "crmlab.targeting"),
    ("crmlab.report",),
    ("crmlab.api", "crmlab.cli", "crmlab"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


MODULES = _modules()


def layer(module: str) -> int:
    best, found = -1, None
    for i, prefixes in enumerate(LAYERS):
        for pre in prefixes:
            if (module == pre or module.startswith(pre + ".")) and len(pre) > best:
                best, found = len(pre), i
    assert found is not None, f"{module} is in no layer: add it to LAYERS"
    return found


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported crmlab module, line, inside a function) for every import in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                    base = base[:len(base) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                names = [f"{mod}.{a.name}" for a in child.names]
            for n in names:
                if n.split(".")[0] != "crmlab":
                    continue
                target = _resolve(n)
                if target and target != module:
                    out.append((target, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return out


GRAPH = {m: imports(m) for m in MODULES}


def test_no_crmlab_import_inside_a_function():
    hidden = [f"{m}:{line} imports {t}" for m, edges in GRAPH.items() for t, line, inner in edges if inner]
    assert not hidden, f"{len(hidden)} crmlab imports inside functions:\n" + "\n".join(sorted(hidden))


def test_no_import_climbs_a_layer():
    up = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)}) at line {line}"
          for m, edges in GRAPH.items() for t, line, _ in edges
          if layer(t) > layer(m)]
    assert not up, "\n".join(sorted(up))


def test_no_cycles():
    edges = {m: {t for t, _, _ in e if t != "crmlab"} for m, e in GRAPH.items()}
    # a package's __init__ importing its own submodules is a re-export, not a cycle back up
    seen, stack, cycles = {}, [], []

    def walk(m):
        seen[m] = 1
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            if seen.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in seen:
                walk(t)
        stack.pop()
        seen[m] = 2

    for m in sorted(edges):
        if m not in seen:
            walk(m)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports_alone(module):
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr.strip().splitlines()[-1]


def test_module_sizes():
    big = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    over = {m: n for m, n in big.items() if n > 450}
    assert not over, f"modules over ~400 lines: {over}"


def test_function_sizes():
    long = []
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 70:
                    long.append(f"{m}.{node.name}: {n} lines")
    assert not long, "functions over ~60 lines:\n" + "\n".join(sorted(long))
