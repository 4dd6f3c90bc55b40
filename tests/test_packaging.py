"""Installable as users expect: every third-party module the code imports is declared."""

import ast
import importlib.metadata
import re
import sys
import tomllib

from tests.conftest import ROOT

OURS = {"consensus", "node", "apps", "citychain", "tests"}
PACKAGES = ("consensus", "node", "apps", "citychain")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0]).lower()


def third_party_imports(paths) -> dict[str, str]:
    """Top-level module -> the first file importing it, for modules neither ours nor stdlib."""
    found: dict[str, str] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in OURS and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def undeclared(paths, declared: set[str]) -> list[str]:
    owners = importlib.metadata.packages_distributions()
    return [f"{where} imports {module} (distribution {owners.get(module)}), not declared in pyproject.toml"
            for module, where in sorted(third_party_imports(paths).items())
            if not {_name(d) for d in owners.get(module, [module])} & declared]


def test_the_packages_declare_every_third_party_import():
    # An optional extra counts: the code imports it only where the feature is used, and says
    # which extra to install when it is missing (bench --dask).
    extras = [d for name, deps in PROJECT["optional-dependencies"].items() if name != "test" for d in deps]
    declared = {_name(d) for d in PROJECT["dependencies"] + extras}
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    assert not undeclared(paths, declared)


def test_the_tests_and_benchmarks_declare_theirs_in_the_test_extra():
    declared = {_name(d) for d in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]}
    paths = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    assert not undeclared(paths, declared)
