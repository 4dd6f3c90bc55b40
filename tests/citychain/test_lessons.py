"""Issue 11's lessons: equivocation and background traffic in the summary, `why` naming a
partition and a Byzantine node, and the teaching scenarios for an equivocating primary, a
lagging node catching up and f + 1 Byzantine nodes breaking safety."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from citychain.cli import main
from citychain.scenario import SHIPPED, load_scenario
from citychain.sim.run import simulate
from citychain.sim.trace import Trace
from citychain.summary import summarize


def run_json(*args) -> tuple[int, dict]:
    res = CliRunner().invoke(main, ["run", *args, "--json"])
    return res.exit_code, json.loads(res.output)


def test_one_transaction_at_n4_counts_background_traffic_apart():
    code, s = run_json("normal-4")
    assert code == 0
    m = s["messages"]
    assert m["total"] == 73
    assert m["background"] == m["by_type"]["fetch"] + m["by_type"]["blocks"] == 48
    assert m["consensus"] == 3 + 9 + 12  # PRE-PREPARE to 3 backups, 3 x 3 PREPAREs, 4 x 3 COMMITs
    assert m["client"] == 1
    assert m["consensus"] + m["background"] + m["client"] == m["total"]
    assert s["equivocation"]["conflicting_pre_prepares"] == 0 and s["equivocation"]["equivocators"] == []


def test_an_equivocating_primary_shows_in_the_summary():
    code, s = run_json("equivocation-4")
    assert code == 0 and s["safety_violations"] == 0  # safe: only one version can gather a quorum
    eq = s["equivocation"]
    assert eq["equivocators"] == ["node-00"]
    assert eq["conflicting_pre_prepares"] == s["blocks"] > 0  # every block it proposed, in two versions
    ex = eq["examples"][0]
    assert ex["primary"] == "node-00" and len(ex["digests"]) == 2
    res = CliRunner().invoke(main, ["run", "equivocation-4"])
    assert "EQUIVOCATION" in res.output


def test_the_narration_shows_the_equivocation(tmp_path):
    res = CliRunner().invoke(main, ["trace", "equivocation-4", "--block", "1", "--out", str(tmp_path), "--narrate"])
    assert res.exit_code == 0, res.output
    assert "node-00 EQUIVOCATES: two different blocks for view 0, seq 1" in res.output


def test_equivocation_count_is_the_same_recorded_or_not():
    spec = load_scenario("equivocation-4")
    a, b = summarize(simulate(spec), "x"), summarize(simulate(spec, record=True), "x")
    assert a["equivocation"] == b["equivocation"] and a["messages"] == b["messages"]


def test_a_lagging_node_catches_up_by_state_transfer(tmp_path):
    out = tmp_path / "cu"
    res = CliRunner().invoke(main, ["run", "catch-up-4", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)
    assert s["node_status"]["node-03"]["blocks_fetched"] > 0 and s["node_status"]["node-03"]["caught_up"]
    trace = Trace.read(out / "trace.jsonl")
    via = {e["via"] for e in trace.of("executed") if e["node"] == "node-03"}
    assert via == {"consensus", "state-transfer"}
    assert any(e["node"] == "node-00" for e in trace.of("checkpoint-stable"))


def test_f_plus_1_byzantine_nodes_break_safety():
    code, s = run_json("fork-4")
    assert code == 1 and s["safety_violations"] > 0 and not s["agreement"]
    assert s["equivocation"]["conflicting_pre_prepares"] > 0


def test_why_names_a_partition_and_a_byzantine_node(tmp_path):
    scenario = tmp_path / "pb.yaml"
    scenario.write_text(f"""base: {SHIPPED / 'taihu.yaml'}
nodes: 4
workload: {{transactions: 1, mix: [{{app: records, op: put, weight: 1}}]}}
byzantine:
  - {{node: node-2, behaviour: silent}}
faults:
  - {{at_ms: 0, partition: [[node-0, node-1, node-2], [node-3]]}}
""")
    out = tmp_path / "o"
    res = CliRunner().invoke(main, ["run", str(scenario), "--out", str(out)])
    assert res.exit_code == 3, res.output  # nothing commits: 2 honest, connected nodes are fewer than q = 3
    res = CliRunner().invoke(main, ["why", str(out), "--height", "1", "--node", "1"])
    assert res.exit_code == 0, res.output
    text = res.output
    assert "node-01 never prepared block 1" in text
    assert "node-02's PREPARE never came: node-02 is Byzantine (silent)" in text
    assert "node-03's PREPARE never came: partition node-00,node-01,node-02 | node-03" in text
    res = CliRunner().invoke(main, ["why", str(out), "--height", "1", "--node", "3"])
    assert "node-00's PRE-PREPARE was lost on the way (partition)" in res.output


def test_the_teaching_scenarios_are_shipped():
    names = {p.stem for p in (SHIPPED / "teaching").glob("*.yaml")}
    assert {"normal-4", "view-change-4", "checkpoint-4", "no-quorum-4", "equivocation-4", "catch-up-4",
            "fork-4"} <= names
    assert Path(SHIPPED / "faults" / "fork-f-plus-1.yaml").exists()
