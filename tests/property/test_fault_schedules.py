"""Random fault schedules with at most f faulty nodes: safety always holds, and every
transaction commits once the faults heal. Hypothesis shrinks a failure to a minimal
schedule.

CI runs a few dozen schedules; a longer soak:
    HYPOTHESIS_PROFILE=soak .venv/bin/python -m pytest tests/property -q
"""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citychain.scenario import BEHAVIOURS, load_scenario
from citychain.sim.run import simulate
from citychain.summary import summarize
from tests.conftest import SCENARIOS

settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BASE = load_scenario(SCENARIOS / "taihu.yaml").model_dump()
HONEST_FAULTS = ("crash", "pause", "isolate")
BYZANTINE = tuple(b for b in BEHAVIOURS if b != "fork")


@st.composite
def schedules(draw):
    n = draw(st.sampled_from([4, 7, 10, 20]))
    f = (n - 1) // 3
    victims = draw(st.permutations(range(n)))[: draw(st.integers(0, f))]
    byzantine, timeline, isolated = [], [], []
    for index in victims:
        node = f"node-{index}"
        kind = draw(st.sampled_from(HONEST_FAULTS + ("byzantine",)))
        if kind == "byzantine":
            byzantine.append({"node": node, "behaviour": draw(st.sampled_from(BYZANTINE))})
            continue
        start = draw(st.integers(0, 300))
        end = start + draw(st.integers(1, 1500))
        if kind == "isolate":
            isolated.append((node, start, end))
        else:
            undo = {"crash": "recover", "pause": "resume"}[kind]
            timeline += [{"at_ms": start, kind: node}, {"at_ms": end, undo: node}]
    if isolated:
        start = min(s for _, s, _ in isolated)
        end = max(e for _, _, e in isolated)
        groups = [[node] for node, _, _ in isolated]
        groups.append([f"node-{i}" for i in range(n) if f"node-{i}" not in {g[0] for g in groups}])
        timeline += [{"at_ms": start, "partition": groups}, {"at_ms": end, "heal": True}]
    loss = draw(st.sampled_from([0.0, 0.0, 0.005]))
    seed = draw(st.integers(0, 2**16))
    return n, byzantine, sorted(timeline, key=lambda e: e["at_ms"]), loss, seed


def scenario_of(n, byzantine, timeline, loss, seed):
    data = dict(BASE)
    data.update(nodes=n, seed=seed, byzantine=byzantine, faults=timeline,
                run={**BASE["run"], "drain_s": 10.0})
    data["network"] = {**BASE["network"], "loss": loss}
    data["workload"] = {**BASE["workload"], "transactions": 60, "rate_tps": 300, "retry_ms": 500}
    return type(load_scenario(SCENARIOS / "taihu.yaml")).model_validate(data)


@given(schedules())
def test_safe_always_and_live_after_healing(schedule):
    scenario = scenario_of(*schedule)
    s = summarize(simulate(scenario), "property")
    assert s["safety_violations"] == 0, s["safety_detail"]
    assert s["liveness"]["ok"], (s["liveness"], s["node_status"])
    assert s["committed_tx"] == 60
    assert s["agreement"], s["node_status"]
