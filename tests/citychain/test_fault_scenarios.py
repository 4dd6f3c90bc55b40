"""The fault scenarios shipped in citychain/scenarios/faults: safe, and live once faults heal."""

import pytest

from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from citychain.summary import summarize
from tests.conftest import SCENARIOS

FAULTS = SCENARIOS / "faults"
SAFE = sorted(p.name for p in FAULTS.glob("*.yaml") if p.name != "fork-f-plus-1.yaml")


def test_the_required_fault_scenarios_exist():
    assert {"primary-crash.yaml", "partition-heal.yaml", "equivocating-primary.yaml", "silent-f-of-60.yaml",
            "mixed-byzantine-20.yaml", "crash-catch-up.yaml", "fork-f-plus-1.yaml"} <= {p.name for p in FAULTS.glob("*.yaml")}


@pytest.mark.parametrize("name", SAFE)
def test_fault_scenario_is_safe_and_live(name):
    scenario = load_scenario(FAULTS / name)
    run = simulate(scenario)
    s = summarize(run, name)
    assert s["safety_violations"] == 0, s["safety_detail"]
    assert s["agreement"] is True
    assert s["liveness"]["ok"], s["liveness"]
    assert s["committed_tx"] == s["submitted_tx"] == scenario.workload.transactions
    honest_up = [v for v in s["node_status"].values() if v["role"] == "honest" and v["up"]]
    assert all(v["caught_up"] for v in honest_up)


def test_primary_crash_changes_view_and_the_old_primary_catches_up():
    s = summarize(simulate(load_scenario(FAULTS / "primary-crash.yaml")), "primary-crash")
    assert s["view_changes"] >= 1
    assert s["faults"][0]["event"] == "crash node-00 (the primary)"
    assert s["node_status"]["node-00"]["caught_up"]


def test_a_crashed_node_catches_up_by_state_transfer():
    s = summarize(simulate(load_scenario(FAULTS / "crash-catch-up.yaml")), "crash")
    status = s["node_status"]["node-05"]
    assert status["blocks_fetched"] > 10 and status["caught_up"]


def test_mixed_byzantine_messages_are_dropped_with_their_reasons():
    s = summarize(simulate(load_scenario(FAULTS / "mixed-byzantine-20.yaml")), "mixed")
    assert s["dropped"]["bad-signature"] > 0  # forge-signatures
    assert s["dropped"]["body-mismatch"] > 0  # its signatures under other nodes' names
    assert s["dropped"]["duplicate"] > 0  # replay
    assert s["view_changes"] >= 1  # the equivocating primary is replaced
    assert s["rejected_messages"] > 0


def test_f_plus_1_colluders_fork_the_chain_and_the_auditor_sees_it():
    s = summarize(simulate(load_scenario(FAULTS / "fork-f-plus-1.yaml")), "fork")
    assert s["safety_violations"] >= 1
    assert "honest nodes hold different blocks" in s["safety_detail"][0]
    assert s["agreement"] is False
