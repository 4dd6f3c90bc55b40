"""The architecture, enforced on the source.

Import direction: consensus and apps import nothing of ours; node imports consensus
and apps; citychain imports all three; nothing imports citychain but its own modules
(and scripts: tests/, benchmarks/). No import circles between our modules, counting
every import (inside functions and under TYPE_CHECKING too).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {"consensus": set(), "apps": set(), "node": {"consensus", "apps"},
           "citychain": {"consensus", "apps", "node"}}
PACKAGES = set(ALLOWED)
IMPURE = {"random", "time", "socket", "asyncio", "threading", "os", "datetime", "secrets"}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def imported(path: Path, root: Path = ROOT, known=MODULES.keys()) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names (relative ones resolved)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod.
            subs = {f"{module}.{alias.name}" for alias in node.names} & known
            out.update(subs or {module})
    return out


def imports(path: Path) -> set[str]:
    """The top-level packages ``path`` imports."""
    return {m.split(".")[0] for m in imported(path)}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_import_direction(package):
    forbidden = PACKAGES - ALLOWED[package] - {package}
    problems = [f"{path.relative_to(ROOT)} imports {sorted(bad)}"
                for path in sorted((ROOT / package).rglob("*.py")) if (bad := imports(path) & forbidden)]
    assert not problems, f"{package} may import only {sorted(ALLOWED[package])} of ours:\n" + "\n".join(problems)


def import_circles(modules: dict[str, Path], root: Path = ROOT) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself)."""
    graph = {m: sorted(imported(p, root, modules.keys()) & modules.keys()) for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(m: str) -> None:  # Tarjan's algorithm
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in graph[m]:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                component.append(n)
                if n == m:
                    break
            if len(component) > 1 or m in graph[m]:
                circles.append(sorted(component))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return circles


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_circles(package):
    modules = {m: p for m, p in MODULES.items() if m.split(".")[0] == package}
    assert not import_circles(modules), f"modules that import each other: {import_circles(modules)}"


def test_the_circle_check_sees_type_checking_imports(tmp_path):
    """As consensus/block.py and messages.py were: one side imported only under TYPE_CHECKING."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "block.py").write_text("from .messages import Signed\n")
    (pkg / "messages.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .block import Block\n")
    modules = {module_name(p, tmp_path): p for p in pkg.glob("*.py")}
    assert import_circles(modules, tmp_path) == [["pkg.block", "pkg.messages"]]


def test_consensus_has_no_clock_randomness_or_io():
    for path in (ROOT / "consensus").rglob("*.py"):
        bad = imports(path) & IMPURE
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
