"""Copy-on-write world states (node/state.py ``successor``) and the simulator's shared
states and executed-request index (issue 13: memory per chain, not per node)."""

from pathlib import Path

from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from node.state import WorldState


def test_a_successor_equals_applying_in_place_and_leaves_its_parent_alone():
    base = WorldState()
    base.apply((("a/x", '"1"'), ("b/y", '"2"')))
    before = base.root()
    writes = (("a/x", '"3"'), ("c/z", '"4"'), ("b/y", None))
    after = base.successor(writes)
    in_place = WorldState()
    in_place.apply((("a/x", '"1"'), ("b/y", '"2"')))
    in_place.apply(writes)
    assert after.root() == in_place.root() != before
    assert base.root() == before and base.get("a/x") == "1" and base.get("b/y") == "2"
    assert after.get("a/x") == "3" and after.get("b/y") is None and len(after) == 2


def test_simulated_nodes_at_one_height_share_one_state_and_one_index():
    scenario = load_scenario(Path(__file__).resolve().parents[2] / "citychain" / "scenarios" / "taihu.yaml")
    data = scenario.model_dump()
    data["nodes"], data["workload"]["transactions"] = 7, 200
    run = simulate(type(scenario).model_validate(data))
    nodes = list(run.nodes.values())
    heights = {n.ledger.height for n in nodes}
    assert len(heights) == 1
    assert len({id(n.executor.state) for n in nodes}) == 1
    replicas = [n.replica for n in nodes if hasattr(n.replica, "done")]
    assert replicas and len({id(r.done.index) for r in replicas}) == 1
    some = nodes[0].ledger.entries[0].block.requests[0].digest
    assert all(some in r.done for r in replicas)
