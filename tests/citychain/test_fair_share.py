"""Adversarial review (rev1) of admission (branch flood): f faulty members, each within
its own token bucket, with validly signed messages.

Finding A3: the bucket's defaults (5,000 messages a second per sender) times the modelled
cost of a verification (112 us) is 56% of a node's CPU per sender; admission's other
bound, the node's total backlog, is shared by all senders, and work is done first come,
first served. So two faulty members (f = 2 at n = 7), each sending no faster than its
bucket allows, keep every honest node's CPU busy more than 100% of the time: honest
messages wait seconds behind theirs (more than the view-change timeout), and the chain
commits nothing while they send. The docs promise the honest nodes keep committing.
Fixed by fair queuing (node/fairqueue.py): work that arrives while a node is busy waits
in its sender's queue and the queues are served in turn, so one sender's flood delays
only it.
"""

from __future__ import annotations

import citychain.sim.run as sim_run
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from consensus.encoding import sha256_hex
from consensus.messages import Prepare
from node.signing import Signer

MS = 1_000_000
FLOOD_S = 3


def short_taihu(taihu_path, nodes):
    """taihu with ``nodes`` nodes, no faults: 500 transactions at 100 a second."""
    spec = load_scenario(taihu_path).with_overrides(nodes=nodes)
    data = spec.model_dump()
    data.update(byzantine=[], faults=[], workload={**data["workload"], "transactions": 500, "rate_tps": 100},
                run={**data["run"], "drain_s": 10.0})
    return type(spec).model_validate(data)


def test_two_faulty_members_within_their_buckets_do_not_stop_the_chain(taihu_path, monkeypatch):
    seen = {}
    original_build = sim_run.build

    def build_with_floods(spec, record=False):
        run = original_build(spec, record=record)
        replicas = run.genesis.replicas
        attackers, honest = replicas[-2:], replicas[:-2]
        rate = run.nodes[honest[0]].admission.limits.rate
        burst = run.nodes[honest[0]].admission.limits.burst
        interval = 1_000_000_000 // rate
        for a in attackers:
            ident = run.genesis.identities[a]
            env = Signer(a, ident.key, run.genesis.chain_id).sign(Prepare(0, 1, sha256_hex(b"junk" + a.encode())))
            for victim in honest:
                send = (lambda e, now, v=victim, a=a: run.network.send(a, v, e, now))
                for k in range(burst + FLOOD_S * rate):  # one burst, then exactly the bucket's rate
                    run.engine.at(0 if k < burst else (k - burst) * interval, send, env)
        run.engine.at(FLOOD_S * 1000 * MS, lambda _a, _now: seen.update(
            {n: run.nodes[n].ledger.transactions for n in honest}), None)
        return run

    monkeypatch.setattr(sim_run, "build", build_with_floods)
    run = simulate(short_taihu(taihu_path, 7))
    drops = run.metrics.drops_by_reason()
    # The floods stayed (almost) within their buckets: a few copies bunch up on the
    # attackers' uplinks, shared with their own consensus traffic (more of it now that
    # the chain keeps committing), and arrive a little faster than the bucket's rate.
    assert drops["rate-limited"] < 0.03 * 2 * 5 * FLOOD_S * 5_000
    # Without the floods, 290 of the 300 transactions submitted by 3 s have committed.
    assert min(seen.values()) >= 150, seen
