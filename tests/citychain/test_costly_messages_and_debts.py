"""Adversarial review (revfq) of fair queuing per sender (node/fairqueue.py).

Finding R1: one message may cost any amount of modelled work. A VIEW-CHANGE's
checkpoint proof is checked envelope by envelope (node.py ``_check_embedded``) before
the replica sees that it has far more than n entries, and a proof of more than 8,192
entries clears the node's verified-signature cache as it is checked, so the same
VIEW-CHANGE, sent again, costs its whole proof again. Fair queuing serves a sender's
message whole (it cannot preempt), so the docs' bound, "an honest message waits at most
shared_ms plus about one message of every other busy sender", is a bound of seconds: one
faulty member at n = 4, sending one such VIEW-CHANGE (9,000 checkpoints of its own)
three times a second, 0.07 % of its bucket, keeps every honest node busy and the chain
stops (view changes, a quarter of the commits).

Finding R2: deficit round robin forgives a sender's debt when its queue empties (it
rejoins with a fresh quantum), so a sender whose expensive messages arrive one at a time
is served one whole message every round, not one quantum's worth.
"""

from __future__ import annotations

import citychain.sim.run as sim_run
from citychain.sim.run import simulate
from consensus.messages import Checkpoint, ViewChange
from node.fairqueue import Turns
from node.signing import Signer
from tests.citychain.test_fair_share import short_taihu

MS = 1_000_000
PROOF = 9_000  # checkpoints in the faulty VIEW-CHANGE: more than the verified cache (8,192)


def _committed_at_4s(taihu_path, monkeypatch, attack: bool):
    seen = {}
    original_build = sim_run.build

    def build(spec, record=False):
        run = original_build(spec, record=record)
        replicas = run.genesis.replicas
        attacker, honest = replicas[-1], replicas[:-1]
        if attack:
            signer = Signer(attacker, run.genesis.identities[attacker].key, run.genesis.chain_id)
            proof = tuple(signer.sign(Checkpoint(10_000 + i, "00" * 32, "00" * 32)) for i in range(PROOF))
            vc = signer.sign(ViewChange(1_000, 0, proof, ()))
            for at in range(1_000 * MS, 4_000 * MS, 300 * MS):  # 3.3 messages a second
                for victim in honest:
                    run.engine.at(at, lambda e, now, v=victim: run.network.send(attacker, v, e, now), vc)
        run.engine.at(4_000 * MS, lambda _a, _now: seen.update(
            {n: run.nodes[n].ledger.transactions for n in honest}), None)
        return run

    monkeypatch.setattr(sim_run, "build", build)
    run = simulate(short_taihu(taihu_path, 4))
    return run, seen


def test_a_few_expensive_view_changes_from_one_member_do_not_stop_the_chain(taihu_path, monkeypatch):
    run, seen = _committed_at_4s(taihu_path, monkeypatch, attack=True)
    # Without the attack, 384 transactions have committed by 4 s and no view changed.
    assert min(seen.values()) >= 300, seen
    assert not run.metrics.views_installed, sorted(run.metrics.views_installed)


def test_a_sender_whose_queue_empties_keeps_its_debt():
    """"big" sends messages costing ten quanta, each arriving just after its last was
    served (so its queue empties every time); "small" has ten messages of one quantum.
    Weighted by cost, "small" should be served its ten before "big" is served a third."""
    turns = Turns(quantum=100, per_sender=100, max_held=0)
    turns.hold("big", ("big", 0))
    for k in range(10):
        turns.hold("small", ("small", k))
    served, sent = [], 1
    while turns.held:
        sender, item = turns.next()
        served.append(item)
        turns.charge(sender, 1_000 if sender == "big" else 100)
        if sender == "big" and sent < 5:
            turns.hold("big", ("big", sent))  # the next one arrives while the last was worked on
            sent += 1
    bigs_before_small_done = sum(1 for item in served[:served.index(("small", 9))] if item[0] == "big")
    assert bigs_before_small_done <= 2, served


def test_a_pre_prepare_from_a_backup_costs_one_verification_not_its_block(taihu_path):
    """R1, the same hole by another door: a PRE-PREPARE's block was checked request by
    request (charged per request the node had not checked) before the replica saw that its
    signer is not the primary. A backup can fill a block with real client requests the
    node has not checked (or no longer remembers: the cache holds 8,192) and send it
    again and again."""
    from consensus.block import Block, BlockHeader, tx_root
    from consensus.messages import PrePrepare, Request

    run = sim_run.build(short_taihu(taihu_path, 4))
    victim = run.nodes["node-00"]  # the primary of view 0
    client = run.genesis.clients[0].id
    csigner = Signer(client, run.genesis.identities[client].key, run.genesis.chain_id)
    requests = tuple(csigner.sign(Request(k, "licences", "noop", {}, k)) for k in range(100))
    header = BlockHeader(run.genesis.chain_id, 1, victim.ledger.head_hash, tx_root(requests), "00" * 32, 0,
                         "node-03", 1)
    block = Block.create(header, requests)
    attacker = Signer("node-03", run.genesis.identities["node-03"].key, run.genesis.chain_id)
    pp = attacker.sign(PrePrepare(0, 1, block.hash, block))
    victim.on_message(pp, 0, "node-03")
    assert victim.busy_until <= 2 * victim.cpu.verify, victim.busy_until / victim.cpu.verify
    assert run.metrics.drops[victim.id].get("pre-prepare-not-from-primary") == 1
