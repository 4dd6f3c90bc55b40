"""Adversarial review (revfq), low severity: honest messages meet the sender queue bound.

Finding R5: a paused node (a fault the scenarios offer) keeps what arrives and takes it
all at once when resumed (node.py ``resume``). Before fair queuing the replay was work
behind one another, far within ``max_backlog_ms``; now everything past the shared window
waits in its sender's queue, bounded at ``queue`` (1,000). At n = 7, 200 tx/s, a node
paused for 20 s is sent about 2,200 messages by each peer and drops 3,082 honest ones as
``sender-queue-full``, an admission reason the docs give for floods. It still catches up
(by state transfer), so this is accounting more than liveness: the bound counts honest
messages as if they were a flood. Fixed: a paused node admits what arrives as it
arrives (buckets, and the held messages counted against ``max_backlog_ms``) and works
the replay off first come, first served (node/node.py, ``_hold``)."""

from __future__ import annotations

from citychain.scenario import load_scenario
from citychain.sim.run import simulate


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


def test_a_flood_at_a_paused_node_is_bounded_as_it_arrives():
    """What a paused node holds is admitted as it arrives: a member flooding it while it
    is away gets its bucket's burst held, the rest refused, so the held backlog (and the
    replay on resume) stays bounded."""
    from consensus.encoding import sha256_hex
    from consensus.messages import Prepare
    from node.signing import Signer
    from tests.fuzzkit import Kit

    kit = Kit()
    node = kit.run.nodes[kit.replicas[1]]
    flooder = kit.replicas[3]
    signer = Signer(flooder, kit.run.genesis.identities[flooder].key, kit.chain)
    node.pause(0)
    burst = node.admission.limits.burst
    for i in range(3 * burst):
        node.on_message(signer.sign(Prepare(0, 1, sha256_hex(str(i).encode()))), 1_000, flooder)
    assert len(node.backlog) == burst
    assert node.metrics.drops_by_reason()["rate-limited"] == 2 * burst
    node.resume(2_000)
    assert node.backlog == []
