"""Adversarial review (revfq), low severity: honest messages meet the sender queue bound.

Finding R5: a paused node (a fault the scenarios offer) keeps what arrives and takes it
all at once when resumed (node.py ``resume``). Before fair queuing the replay was work
behind one another, far within ``max_backlog_ms``; now everything past the shared window
waits in its sender's queue, bounded at ``queue`` (1,000). At n = 7, 200 tx/s, a node
paused for 20 s is sent about 2,200 messages by each peer and drops 3,082 honest ones as
``sender-queue-full``, an admission reason the docs give for floods. It still catches up
(by state transfer), so this is accounting more than liveness: the bound counts honest
messages as if they were a flood. Not fixed (a pause longer than the bound allows will
always meet it; the replay could bypass the queues, or be counted under its own
reason); a strict expected failure."""

from __future__ import annotations

import pytest

from citychain.scenario import load_scenario
from citychain.sim.run import simulate


@pytest.mark.xfail(strict=True, reason="review revfq R5: a resumed node's replay of honest messages meets sender-queue-full")
def test_a_node_resumed_after_a_long_pause_refuses_no_honest_message_for_admission(taihu_path):
    spec = load_scenario(taihu_path).with_overrides(nodes=7)
    data = spec.model_dump()
    data.update(byzantine=[], faults=[{"at_ms": 500, "pause": "node-03"}, {"at_ms": 20_500, "resume": "node-03"}],
                workload={**data["workload"], "transactions": 4_000, "rate_tps": 200}, run={**data["run"], "drain_s": 20.0})
    run = simulate(type(spec).model_validate(data))
    heights = {run.nodes[n].ledger.height for n in run.nodes}
    assert len(heights) == 1  # it caught up either way
    drops = run.metrics.drops.get("node-03", {})
    assert not {"rate-limited", "backlog-full", "sender-queue-full"} & set(drops), dict(drops)
