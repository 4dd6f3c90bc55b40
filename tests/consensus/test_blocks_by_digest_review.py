"""Adversarial review of blocks by digest (docs/messages.md, "Blocks by digest").

Each test scripts one interleaving against the pure replicas of tests/consensus/harness.py."""

from consensus.effects import Send
from consensus.events import Receive, TimerFired
from consensus.messages import BlockRequest, Commit, NewView, Prepare, ViewChange

from .harness import Net

HONEST = ("r1", "r2", "r3")


def _view_change(net: Net) -> None:
    """Every honest replica's timer fires: it moves on to the next view."""
    for name in HONEST:
        net.step(name, TimerFired(net.now, "view-change"))


def test_a_byzantine_replica_with_an_old_certificate_and_a_withheld_block_does_not_stall_later_views():
    """r0 is Byzantine: it keeps a valid prepared certificate for (0, 1, B) and withholds B.

    1. View 0 (primary r0): r0 proposes B at 1; r1, r2, r3 accept it and PREPARE, and
       only r0 receives the PREPAREs: r0 alone prepares (0, 1, B). r0 goes silent.
    2. View 1 (primary r1): the NEW-VIEW of r1, r2, r3 re-issues nothing; r1 proposes
       B' at 1, which r1, r2, r3 accept (their `Accepted` record for 1 is now B' in
       view 1), and B' does not prepare (its votes are lost).
    3. r1, r2, r3 crash and restart: B lived only in their volatile log (seen_blocks),
       their durable records hold B' only. No honest replica holds B any more.
    4. r0 sends each honest replica, ahead of time, its VIEW-CHANGEs for views 2..9 with
       the certificate for (0, 1, B) (by digest; replicas keep VIEW-CHANGEs up to 16
       views ahead). From now on the network is fair: every message delivered in order.
    5. View 2's primary, r2, has the VIEW-CHANGEs of every replica. Before the fix it
       built its NEW-VIEW on its own and the first q - 1 others by name, r0's among them:
       O re-issued B at 1, every honest replica fetched B from r0, then from the
       certificate's other signers, which answered `no-block-to-serve`; nobody PREPAREd,
       and every later view did the same: the chain never moved again (before blocks by
       digest, r0's VIEW-CHANGE carried B, and the same schedule ordered the block).

    The fix: a new primary builds its NEW-VIEW only on VIEW-CHANGEs whose prepared blocks
    it holds, fetching a missing one meanwhile (any quorum of valid VIEW-CHANGEs is a safe
    basis). r2 asks r0 for B, gets nothing, and builds on r1's, r2's and r3's, which
    re-issue nothing: view 2 orders the request."""
    net = Net(4, block_size=1)
    # 1. Only r0 prepares B.
    net.drop_if = lambda dst, env: (type(env.message) is Prepare and dst != "r0") or type(env.message) is Commit
    net.submit("r0")
    net.deliver_all()
    proof = net.replicas["r0"].log[1].proof
    assert proof is not None and all(not net.replicas[r].log[1].prepared for r in HONEST)
    digest = proof.pre_prepare.message.digest
    net.cut = {"r0"}

    # 2. View 1: nothing re-issued; r1 proposes another block at 1, which nobody prepares.
    view1_votes = lambda env: type(env.message) in (Prepare, Commit) and env.message.view == 1  # noqa: E731
    net.drop_if = lambda dst, env: view1_votes(env)
    _view_change(net)
    net.deliver_all()
    assert all(net.replicas[r].view == 1 and net.replicas[r].active for r in HONEST)
    other = net.replicas["r1"].log[1].digest
    assert other is not None and other != digest
    assert all(net.stores[r].accepted[1].message.digest == other for r in HONEST)

    # 3. Every honest replica restarts (the votes it repeats for B' are lost too).
    for r in HONEST:
        net.restart(r)
    net.deliver_all()
    assert all(net.replicas[r].held_block(1, digest) is None for r in HONEST)

    # 4. r0's VIEW-CHANGEs for the coming views, sent ahead of time.
    for view in range(2, 10):
        vc = net.sign("r0", ViewChange(view, 0, (), (proof,)))
        for r in HONEST:
            net.step(r, Receive(net.now, vc))
    net.drop_if = None

    # 5. A fair network from now on. View 2's primary, r2, holds no block B: it asks r0
    #    (silent) for it and builds its NEW-VIEW on r1's, r2's and r3's VIEW-CHANGEs,
    #    which name no block it lacks; the chain moves on in view 2.
    _view_change(net)
    net.deliver_all()
    for _ in range(4):
        for r in HONEST:
            if "block-fetch" in net.timers[r]:
                net.fire(r, "block-fetch")
        net.deliver_all()
    new_views = [env.message for _, env in net.sent if type(env.message) is NewView]
    assert [nv.view for nv in new_views] == [1, 2]
    assert "r0" not in {vc.signer for vc in new_views[-1].view_changes}
    assert new_views[-1].pre_prepares == ()  # B is not re-issued: no honest replica prepared it
    asked = {e.to for e in net.effects["r2"] if type(e) is Send and type(e.message) is BlockRequest}
    assert "r0" in asked  # the primary asked the claimant for B before passing its VIEW-CHANGE over
    # Liveness: the honest replicas, in a fair network with one faulty replica, order a block.
    assert all(net.executed[r] for r in HONEST)
    assert all(net.replicas[r].view == 2 and net.replicas[r].active for r in HONEST)


def test_a_fetch_pending_when_state_transfer_brings_the_block_ends_and_asks_nobody_again():
    """r3 lacks block 1, which view 1's O re-issues; every BLOCK-REPLY to it is lost. r1 and
    r2 cannot commit it without r3's PREPARE (r0 is gone): r3 is behind for good unless
    state transfer brings block 1 (here: its commit certificate from view 0's r0, r1, r2
    COMMITs, as a peer that committed it would send). The fetch must end there: no
    further BLOCK-REQUEST, the block-fetch timer a no-op, and the view-1 PREPARE sent."""
    from consensus.events import Adopted
    from .test_blocks_by_digest import change_view, prepared_but_not_committed, sent_by

    net = Net(4, block_size=1)
    digest = prepared_but_not_committed(net, lacking="r3")
    net.drop_if = lambda dst, env: type(env.message).__name__ == "BlockReply"
    change_view(net)
    net.deliver_all()
    r3 = net.replicas["r3"]
    assert digest in r3.fetching
    block = net.replicas["r1"].held_block(1, digest)
    certificate = tuple(net.sign(r, Commit(0, 1, digest)) for r in ("r0", "r1", "r2"))
    net.step("r3", Adopted(net.now, block, certificate, "22" * 32))
    assert not r3.fetching and r3.executed == 1
    assert Prepare(1, 1, digest) in sent_by(net, "r3", Prepare)
    asked = len(sent_by(net, "r3", BlockRequest))
    if "block-fetch" in net.timers["r3"]:
        net.fire("r3", "block-fetch")
    assert len(sent_by(net, "r3", BlockRequest)) == asked


def test_a_replica_that_prepared_a_fetched_block_serves_it_after_a_restart_from_its_encoded_records():
    """r3 fetches block 1 for view 1's O and prepares it; then it crashes. Its durable
    records go through the on-disk encoding (node/record_codec.py, as node/sqlite_store.py
    writes them) and back: restored, r3 still holds the block (its `Accepted` and
    `Prepared` records carry it, not the digest-only form O named it by) and serves it."""
    from consensus.durable import DurableState
    from consensus.effects import Persist
    from node.record_codec import decode_record, encode_record
    from .harness import CHAIN
    from .test_blocks_by_digest import change_view, prepared_but_not_committed

    net = Net(4, block_size=1)
    digest = prepared_but_not_committed(net, lacking="r3")
    net.drop_if = lambda dst, env: type(env.message) is Commit  # nothing commits in view 1 either
    change_view(net)
    net.deliver_all()
    assert net.replicas["r3"].log[1].prepared and net.replicas["r3"].log[1].view == 1
    stored = DurableState()
    for effect in net.effects["r3"]:
        if type(effect) is Persist:
            stored.apply(decode_record(encode_record(effect.record), CHAIN))
    assert stored.prepared[1].pre_prepare.message.block is not None
    net.stores["r3"] = stored
    net.restart("r3")
    r3 = net.replicas["r3"]
    assert r3.held_block(1, digest) is not None and r3.held_block(1, digest).hash == digest
    net.step("r3", Receive(net.now, net.sign("r1", BlockRequest(1, digest))))
    replies = [e for e in net.effects["r3"] if type(e) is Send and type(e.message).__name__ == "BlockReply"]
    assert [(e.to, e.message.block.hash) for e in replies] == [("r1", digest)]
