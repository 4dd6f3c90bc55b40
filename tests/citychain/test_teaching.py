"""Teaching (issue 11): the recorded trace, the narration, the diagrams, `why`, the quorum in the summary."""

import json

from click.testing import CliRunner

from citychain.cli import main
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from citychain.sim.trace import Trace
from citychain.summary import summarize
from citychain.teach.instance import block_instance, view_change_instance
from citychain.teach.narrate import lines
from consensus.quorum import quorum


def recorded(name, **kw):
    return simulate(load_scenario(name), record=True, **kw)


def _strip(trace):
    return [json.dumps(e, sort_keys=True) for e in trace.events]


def test_the_trace_is_deterministic_and_recording_changes_nothing():
    a, b = recorded("view-change-4"), recorded("view-change-4")
    assert _strip(a.trace("x")) == _strip(b.trace("x"))
    plain = simulate(load_scenario("view-change-4"))
    sa, sp = summarize(a, "x"), summarize(plain, "x")
    sa.pop("wall_seconds"), sp.pop("wall_seconds")
    assert sa == sp


def test_the_trace_holds_exactly_the_messages_of_the_run(tmp_path):
    run = recorded("view-change-4")
    trace = run.trace("view-change-4")
    sends = trace.of("send")
    by_kind = {}
    for e in sends:
        by_kind[e["kind"]] = by_kind.get(e["kind"], 0) + 1
    assert by_kind == dict(run.metrics.messages)
    drops = {}
    for e in trace.of("drop"):
        drops[e["reason"]] = drops.get(e["reason"], 0) + 1
    assert drops == dict(run.metrics.drops_by_reason())
    lost = [e for e in sends if e["lost"]]
    delivered = [e for e in trace.of("deliver")]
    assert len(sends) == len(lost) + len(delivered)
    assert sum(1 for e in delivered if e["status"] == "node-down") == run.metrics.lost_to_crash
    trace.write(tmp_path / "t.jsonl")
    again = Trace.read(tmp_path / "t.jsonl")
    assert again.header == trace.header and again.events == trace.events


def test_narration_of_a_known_four_node_round():
    trace = recorded("normal-4").trace("normal-4")
    text = lines(block_instance(trace, 1))
    assert trace.header["quorum"] == quorum(4) == 3
    prepared = [t for t in text if " prepared block 1: " in t]
    committed = [t for t in text if " committed-local block 1: " in t]
    assert len(prepared) == 4 and len(committed) == 4
    for t in prepared:
        assert "pre-prepare from node-00 + 2 matching prepares" in t and t.endswith("(needs 2f = 2)")
    for t in committed:
        assert "3 matching commits" in t and t.endswith("(needs q = 2f+1 = 3)")
    assert text[0].startswith("t=") and "node-00 (primary of view 0) proposes block 1" in text[0]
    assert any("node-00 sends PRE-PREPARE(view 0, seq 1" in t and "to node-01, node-02, node-03" in t for t in text)


def test_narrated_quorums_match_the_replica_quorum_at_n_7():
    run = recorded("normal-7")
    replica = run.nodes["node-01"].replica
    text = lines(block_instance(run.trace("normal-7"), 1))
    assert replica.q == 5
    assert all(f"(needs 2f = {replica.q - 1})" in t for t in text if " prepared block" in t)
    assert all(t.endswith(f"(needs q = 2f+1 = {replica.q})") for t in text if "committed-local" in t)


def test_view_change_instance_and_diagrams(tmp_path):
    result = CliRunner().invoke(main, ["trace", "view-change-4", "--view-change", "1", "--out", str(tmp_path),
                                       "--narrate"])
    assert result.exit_code == 0, result.output
    assert "starts a view change to view 1" in result.output
    assert "installed view 1 (primary node-01)" in result.output
    assert "FAULT: crash node-00" in result.output
    for name in ("view-change-1.svg", "view-change-1.png", "replica-state.png", "trace.jsonl"):
        assert (tmp_path / name).stat().st_size > 0
    trace = Trace.read(tmp_path / "trace.jsonl")
    inst = view_change_instance(trace, 1)
    assert {c.kind for c in inst.copies} >= {"view-change", "new-view"}


def test_checkpoints_are_recorded_and_collect_the_log():
    trace = recorded("checkpoint-4").trace("checkpoint-4")
    stable = trace.of("checkpoint-stable")
    assert {e["seq"] for e in stable} >= {4, 8}
    states = [e for e in trace.of("state") if e["node"] == "node-01"]
    assert any(e["low"] >= 4 for e in states) and all(e["high"] == e["low"] + 8 for e in states)
    assert any(b["log"] < a["log"] for a, b in zip(states, states[1:]))  # garbage collected


def test_why_names_the_crashed_nodes(tmp_path):
    out = tmp_path / "nq"
    runner = CliRunner()
    result = runner.invoke(main, ["run", "no-quorum-4", "--out", str(out), "--json"])
    assert result.exit_code == 3, result.output  # a liveness failure
    summary = json.loads(result.output)
    assert "fewer than the quorum of 3" in summary["liveness"]["reason"]
    tx = json.loads((out / "submitted.jsonl").read_text().splitlines()[0])["tx"]
    result = runner.invoke(main, ["why", str(out), tx[:12], "--node", "1"])
    assert result.exit_code == 0, result.output
    assert "node-01 never prepared block 1" in result.output
    assert "node-02's PREPARE never came: node-02 was crashed" in result.output
    assert "node-03's PREPARE never came: node-03 was crashed" in result.output


def test_quorum_in_the_summary_and_recovery_from_the_crash():
    result = CliRunner().invoke(main, ["run", "view-change-4", "--json"])
    s = json.loads(result.output)
    assert (s["nodes"], s["f"], s["quorum"]) == (4, 1, 3)
    crash = s["recovery"][0]
    assert crash["fault"].startswith("crash node-00") and crash["at_ms"] == 300.0
    assert crash["recovered_ms"] > 100  # the view change took time, measured from the crash
    table = CliRunner().invoke(main, ["run", "taihu", "--nodes", "4", "--no-progress"]).output
    assert "quorum 2f+1 = 3" in table


def test_the_first_transaction_is_valid():
    run = simulate(load_scenario("taihu").model_copy(update={"nodes": 4}).model_copy(
        update={"workload": load_scenario("taihu").workload.model_copy(update={"transactions": 1})}))
    s = summarize(run, "one")
    assert s["committed_tx"] == 1 and s["rejected_tx"] == 0
