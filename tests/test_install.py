"""A pip user's install: the wheel in a fresh virtual environment, run from outside the
repository, including from a project with an `apps/` package of its own (a Django
project, say). Slow (pip installs the dependencies), but `make test` and CI run it."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Not part of a fresh clone: left out of the copy the wheel is built from.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".hypothesis", "out", "bench-out")
SHADOW = "raise ImportError('the project\\'s own {name}/ package was imported instead of citychain\\'s')\n"


def run(cmd: list, cwd: Path, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


def django_like_project(path: Path) -> Path:
    """A checkout whose own apps/, node/ and consensus/ packages would break citychain if imported."""
    for name in ("apps", "node", "consensus"):
        (path / name).mkdir(parents=True)
        (path / name / "__init__.py").write_text(SHADOW.format(name=name))
    (path / "manage.py").write_text("")
    return path


def console_script(bindir: Path) -> Path:
    return bindir / ("citychain.exe" if os.name == "nt" else "citychain")


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_runs_a_city_chain_from_anywhere(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp_path / "dist", source],
        tmp_path)
    (wheel,) = (tmp_path / "dist").glob("citychain-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("citychain/scenarios/")}
    assert {"citychain/scenarios/taihu.yaml", "citychain/scenarios/faults/primary-crash.yaml",
            "citychain/scenarios/teaching/normal-4.yaml"} <= shipped

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    run([bindir / "python", "-m", "pip", "install", "--quiet", wheel], tmp_path, timeout=900)
    shutil.rmtree(source)  # nothing may come from the checkout

    empty = tmp_path / "empty"
    empty.mkdir()
    summary = json.loads(run([console_script(bindir), "run", "taihu", "--json"], empty))
    assert summary["scenario"] == "taihu" and summary["chain_id"] == "taihu" and summary["nodes"] == 24
    assert summary["committed_tx"] == summary["submitted_tx"] == 1000
    assert summary["safety_violations"] == 0 and summary["agreement"]
    assert list(empty.iterdir()) == []

    listing = run([console_script(bindir), "scenarios"], empty).splitlines()
    assert len(listing) == 23 and listing[0].startswith("chongqing")  # 6 cities, 7 faults, 10 lessons

    # The same run from a project with apps/, node/ and consensus/ of its own.
    project = django_like_project(tmp_path / "project")
    again = json.loads(run([console_script(bindir), "run", "taihu", "--json"], project))
    assert again["head"] == summary["head"]


def test_the_console_script_works_in_a_project_with_its_own_apps_package(tmp_path):
    """The installed console script puts its own bin/ first on sys.path, not the working
    directory, so a Django project's apps/ does not shadow citychain's (README, Layout)."""
    script = console_script(Path(sys.executable).parent)
    if not script.exists():
        pytest.skip("citychain is not installed in this environment (make test installs it)")
    project = django_like_project(tmp_path)
    summary = json.loads(run([script, "run", "primary-crash", "--nodes", "7", "--json"], project))
    assert summary["safety_violations"] == 0 and summary["committed_tx"] == summary["submitted_tx"]
    # `python -m` would put the project first on sys.path; -P (Python 3.11+) does not.
    listing = run([sys.executable, "-P", "-m", "citychain.cli", "scenarios"], project)
    assert "taihu" in listing
