"""The scenarios ship inside the package and are named by their short name or by a path."""

import tomllib

import pytest
from click.testing import CliRunner

from citychain.cli import main
from citychain.scenario import SHIPPED, ScenarioError, load_scenario, resolve_scenario, shipped_scenarios
from tests.conftest import ROOT

CITIES = {"taihu", "henan", "sichuan", "chongqing", "zhejiang", "guiyang"}
FAULTS = {"primary-crash", "partition-heal", "equivocating-primary", "silent-f-of-60", "mixed-byzantine-20",
          "crash-catch-up", "fork-f-plus-1"}
TEACHING = {"normal-4", "normal-7", "view-change-4", "view-change-7", "checkpoint-4", "checkpoint-7", "no-quorum-4",
            "equivocation-4", "catch-up-4", "fork-4"}


def test_every_shipped_scenario_has_a_unique_short_name():
    files = sorted(SHIPPED.rglob("*.yaml"))
    shipped = shipped_scenarios()
    assert set(shipped) == CITIES | FAULTS | TEACHING
    assert sorted(shipped.values()) == files  # no two files share a name, none is left out


def test_pyproject_ships_every_scenario_file():
    """The wheel holds what the package-data globs match: every file under scenarios/."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["citychain"]
    declared = {p for g in globs for p in (ROOT / "citychain").glob(g)}
    present = {p for p in SHIPPED.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert present <= declared


@pytest.mark.parametrize("name", sorted(CITIES | FAULTS | TEACHING))
def test_a_short_name_loads_the_shipped_file(name, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert load_scenario(name) == load_scenario(shipped_scenarios()[name])


def test_name_with_yaml_suffix_and_a_directory_of_that_name(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taihu").mkdir()  # say, the output of an earlier `citychain run taihu --out taihu`
    assert resolve_scenario("taihu") == SHIPPED / "taihu.yaml"
    assert resolve_scenario("taihu.yaml") == SHIPPED / "taihu.yaml"


def test_a_file_of_that_name_wins_over_the_shipped_one(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taihu.yaml").write_text("base: taihu\nnodes: 4\n")
    assert load_scenario("taihu.yaml").nodes == 4
    assert load_scenario("taihu").nodes == 24


def test_a_base_may_name_a_shipped_scenario(tmp_path):
    """A scenario of your own, anywhere, can start from a shipped one."""
    mine = tmp_path / "mine.yaml"
    mine.write_text("base: henan\nnodes: 7\nworkload: {transactions: 50}\n")
    scenario = load_scenario(mine)
    assert (scenario.chain.id, scenario.nodes, scenario.workload.transactions) == ("henan", 7, 50)


def test_an_unknown_name_says_where_to_look(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError, match="citychain scenarios"):
        load_scenario("no-such-chain")


def test_scenarios_command_lists_one_line_each():
    result = CliRunner().invoke(main, ["scenarios"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == list(shipped_scenarios())
    taihu = next(line for line in lines if line.startswith("taihu "))
    assert "24 nodes" in taihu and "Taihu Chain (Wuxi)" in taihu


def test_run_by_short_name(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", "primary-crash", "--nodes", "7", "--json"])
    assert result.exit_code == 0, result.output
    assert '"scenario": "primary-crash"' in result.output
