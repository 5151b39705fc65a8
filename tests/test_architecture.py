"""The shape of the code: imports flow one way, no cycles, the science core stays alone.

Read statically from the source (every import statement, module level or inside a
function), so a lazy import that closes a loop counts as a cycle too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("objectives", "hpo", "storage", "workers")
#: Which project packages each package may import (hpo -> everything; workers -> storage).
ALLOWED = {
    "objectives": {"objectives"},
    "storage": {"storage"},
    "workers": {"workers", "storage"},
    "hpo": {"hpo", "objectives", "storage", "workers"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules imported by ``name`` (``from pkg import sub`` resolves to ``pkg.sub``)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        out.update(t for t in targets if t in known)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def test_no_import_cycles(graph):
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_flow_one_way(graph):
    wrong = [
        f"{mod} imports {dep}"
        for mod, deps in graph.items()
        for dep in deps
        if dep.split(".")[0] not in ALLOWED[mod.split(".")[0]]
    ]
    assert not wrong, "\n".join(wrong)


def test_objectives_never_imports_optuna():
    offenders = []
    for path in sorted((REPO / "objectives").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "optuna" or n.startswith("optuna.") for n in names):
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders


def test_packages_import_light():
    """``import hpo.cli`` etc. load neither torch, scikit-learn nor the plotting libraries."""
    code = (
        "import sys, hpo.cli, hpo.config, hpo.plots, objectives.registry, objectives.evaluate;"
        "import storage.urls, workers.worker, workers.slurm;"
        "heavy = ('torch', 'sklearn', 'nflows', 'matplotlib', 'mplhep');"
        "heavy = [m for m in heavy if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
