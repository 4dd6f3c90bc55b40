"""Adversarial review (rev1): what one validly signed NEW-VIEW can make a node check.

Finding A4: a node authenticates every envelope a NEW-VIEW carries before the replica
looks at it (a replay excepted, branch flood), walking ``embedded()``, which repeats a
pre-prepare's block requests once per VIEW-CHANGE that names that pre-prepare. A faulty
member that is (or will be) a view's primary signs a NEW-VIEW of K VIEW-CHANGEs (K far
above n: a valid one holds a quorum, at most n) all naming one pre-prepare of a block
of R requests: the node makes K x R authentication calls (cached verdicts, but each a
call and a list entry: at the decoder's limits, 100,000 x 10,000) for one message within
its bucket, and only then does the replica refuse it. Fixed by checking each embedded
envelope and each block once (by identity; a block's requests through the per-block
cache, ``Membership.check_block``): the work is linear in the message's size.
"""

from __future__ import annotations

from citychain.scenario import load_scenario
from citychain.sim.run import build
from consensus.block import Block, BlockHeader, tx_root
from consensus.messages import NewView, PrePrepare, PreparedProof, Request, ViewChange
from node.signing import Signer


def test_one_signed_new_view_costs_authentication_work_bounded_by_n(taihu_path):
    spec = load_scenario(taihu_path).with_overrides(nodes=4)
    data = spec.model_dump()
    data.update(byzantine=[], faults=[])
    run = build(type(spec).model_validate(data))
    chain = run.genesis.chain_id
    attacker = "node-03"  # the primary of view 3 (and 7, 11...)
    ident = run.genesis.identities[attacker]
    signer = Signer(attacker, ident.key, chain)
    client_id = next(i for i, x in run.genesis.identities.items() if x.role == "client")
    client = Signer(client_id, run.genesis.identities[client_id].key, chain)
    requests = tuple(client.sign(Request(i, "evidence", "store", {"doc": "x"}, 1)) for i in range(100))
    header = BlockHeader(chain, 1, run.genesis.hash if hasattr(run.genesis, "hash") else "00" * 32,
                         tx_root(requests), "11" * 32, 0, "node-00", 1)
    block = Block(header, requests, header.compute_hash())
    pp = signer.sign(PrePrepare(0, 1, block.hash, block))
    k = 2_000
    vcs = tuple(signer.sign(ViewChange(3, v, (), (PreparedProof(pp, ()),))) for v in range(k))
    new_view = signer.sign(NewView(3, vcs, ()))
    victim = run.nodes["node-01"]
    calls = [0]
    original = victim.membership.authenticate

    def counting(env):
        calls[0] += 1
        return original(env)

    victim.membership.authenticate = counting
    victim.on_message(new_view, 1)
    # Each distinct envelope once: K VIEW-CHANGEs, the pre-prepare, its R requests, the NEW-VIEW.
    assert calls[0] <= k + len(requests) + 2, f"one NEW-VIEW made {calls[0]} authentication calls"
