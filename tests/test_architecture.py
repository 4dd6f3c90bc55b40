"""Import direction: node -> consensus, node -> apps; never the other way."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"consensus": {"node", "apps"}, "apps": {"node", "consensus"}}
IMPURE = {"random", "time", "socket", "asyncio", "threading", "os", "datetime", "secrets"}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package):
    for path in (ROOT / package).rglob("*.py"):
        bad = imports(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_consensus_has_no_clock_randomness_or_io():
    for path in (ROOT / "consensus").rglob("*.py"):
        bad = imports(path) & IMPURE
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
