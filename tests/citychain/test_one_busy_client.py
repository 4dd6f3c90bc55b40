"""Adversarial review (revfq) of the per-client share of the mempool (consensus/replica.py,
``mempool-client-full``).

Finding R4: one busy client's legitimate load now causes refusals, retries and a view
change that did not occur before. At n = 4, one client submitting 12,000 transactions at
6,000 a second: without the share every one is answered in 2.2 s, no retry, no view
change; with it, a client may hold only a quarter of max_pending (500) at each node, so
its requests are refused (1,027, all at node-00: the primary, where the client's requests
arrive), it retries them (935) to every node, the backups take and hold them and
forward them to the primary, which refuses them again for the same share: the backups'
request timers expire and the honest primary is voted out (one view change), and the
run takes twice as long (4.6 s). A per-client share that applies whether or not any other client is
waiting turns one client's burst into suspicion of the primary. Fixed: the share binds
only once the pool is half full and another client has requests waiting
(consensus/replica.py, ``_on_request``; tests/consensus/test_client_share.py)."""

from __future__ import annotations

from citychain.scenario import load_scenario
from citychain.sim.run import simulate


def test_one_busy_client_within_the_chains_capacity_causes_no_refusal_and_no_view_change(taihu_path):
    spec = load_scenario(taihu_path).with_overrides(nodes=4)
    data = spec.model_dump()
    data.update(byzantine=[], faults=[], workload={**data["workload"], "transactions": 12_000, "rate_tps": 6_000,
                                                   "clients": 1}, run={**data["run"], "drain_s": 30.0})
    run = simulate(type(spec).model_validate(data))
    m = run.metrics
    assert all(m.answered(d, run.f) for d in m.submitted)
    assert "mempool-client-full" not in m.drops_by_reason()
    assert not m.views_installed, sorted(m.views_installed)
    assert m.retries == 0
