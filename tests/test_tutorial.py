"""docs/tutorial.md: every command of the lab runs, in order, with the exit code the lab
says (`# exits N`; 0 otherwise), and each --out directory gets its report.html."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from citychain.cli import main

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
pytestmark = pytest.mark.xdist_group("tutorial")


def commands() -> list[tuple[list[str], int]]:
    out = []
    for block in re.findall(r"```sh\n(.*?)```", TUTORIAL.read_text(), re.S):
        for line in block.splitlines():
            command, _, comment = line.partition("#")
            if not command.strip():
                continue
            expected = re.search(r"exits (\d)", comment)
            out.append((shlex.split(command), int(expected.group(1)) if expected else 0))
    return out


def test_the_tutorial_has_a_command_per_lesson():
    cmds = commands()
    assert all(argv[0] == "citychain" for argv, _ in cmds)
    scenarios = {argv[2] for argv, _ in cmds if argv[1] in ("run", "trace")}
    assert {"normal-4", "view-change-4", "checkpoint-4", "equivocation-4", "catch-up-4", "no-quorum-4",
            "fork-f-plus-1"} <= scenarios


def test_every_tutorial_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for argv, expected in commands():
        result = runner.invoke(main, argv[1:])
        assert result.exit_code == expected, f"{' '.join(argv)}: exit {result.exit_code}\n{result.output[-2000:]}"
        if "--out" in argv:
            out = tmp_path / argv[argv.index("--out") + 1]
            assert (out / "report.html").exists(), argv
