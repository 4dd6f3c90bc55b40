"""Adversarial review of commit 4fe5b9b: a new primary builds its NEW-VIEW only on
VIEW-CHANGEs whose prepared blocks it holds (docs/messages.md, "Blocks by digest").

Each test scripts one interleaving against the pure replicas of tests/consensus/harness.py."""

from consensus.effects import Send
from consensus.events import Receive, TimerFired
from consensus.messages import BlockReply, BlockRequest, Commit, NewView, PrePrepare, Prepare, ViewChange

from .behind import HONEST, behind, small_net, view_change
from .harness import Net

def test_a_behind_primary_holds_and_takes_up_a_block_o_re_issues_above_its_high_watermark():
    """r1, primary of view 1, executed nothing (high watermark 4); r2's and r3's
    VIEW-CHANGEs (stable 4) name block 5, which r1 fetches before building its NEW-VIEW
    (min-s 4, O = {5}). Installing its own NEW-VIEW it must keep block 5 (the doc: "every
    block an honest primary's O re-issues is one it holds and serves") and, once caught
    up to 4 by state transfer, take its own pre-prepare at 5 up, or 5 cannot commit
    (r0 is cut: r1's COMMIT is needed)."""
    net = small_net()
    digest = behind(net, "r1")
    view_change(net)
    net.deliver_all()
    r1 = net.replicas["r1"]
    [nv] = [env.message for src, env in net.sent if src == "r1" and type(env.message) is NewView]
    assert [(p.message.seq, p.message.digest) for p in nv.pre_prepares] == [(5, digest)]
    assert BlockRequest(5, digest) in [e.message for e in net.effects["r1"] if type(e) is Send]
    assert r1.view == 1 and r1.active
    assert r1.held_block(5, digest) is not None, "r1 dropped the block its own O re-issues (beyond its high watermark)"
    net.adopt("r1", "r2", 4)
    net.deliver_all()
    assert all(net.replicas[r].executed == 5 for r in HONEST)


def test_a_primary_waiting_for_a_block_it_then_adopts_by_state_transfer_still_sends_its_new_view():
    """r1, primary of view 1, lacks block 1, which r2 and r3 prepared in view 0 and name
    in their VIEW-CHANGEs; it asks r2 for it (the answer is lost). Meanwhile the old
    view's COMMITs reach r2 and r3, which commit and execute block 1, and r1 adopts it by
    state transfer. Every VIEW-CHANGE it holds now names nothing it lacks (block 1 is at
    or below what it executed), so it should send its NEW-VIEW. But the adoption ended
    the fetch (``_after_execution`` pops it) without trying ``_maybe_new_view`` again,
    and a late BLOCK-REPLY is now `unrequested-block`: r1 waits until the view times out."""
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: type(env.message) is Commit or (type(env.message) is PrePrepare and dst == "r1")
    net.submit("r0")
    net.deliver_all()
    digest = net.replicas["r2"].log[1].digest
    assert net.replicas["r1"].held_block(1, digest) is None
    net.cut = {"r0"}
    net.drop_if = lambda dst, env: type(env.message) is BlockReply and dst == "r1"
    view_change(net)
    net.deliver_all()
    r1 = net.replicas["r1"]
    assert BlockRequest(1, digest) in [e.message for e in net.effects["r1"] if type(e) is Send]
    assert not [env for src, env in net.sent if type(env.message) is NewView]
    # The old view's COMMITs (r0's was in flight before it was cut) reach r2 and r3.
    net.drop_if = None
    for src in ("r0", "r2", "r3"):
        commit = net.sign(src, Commit(0, 1, digest))
        for dst in ("r2", "r3"):
            if dst != src:
                net.step(dst, Receive(net.now, commit))
    assert all(net.replicas[r].executed == 1 for r in ("r2", "r3"))
    net.adopt("r1", "r2", 1)
    assert r1.executed == 1
    if "block-fetch" in net.timers["r1"]:
        net.fire("r1", "block-fetch")
    net.deliver_all()
    assert [env.message.view for src, env in net.sent if src == "r1" and type(env.message) is NewView] == [1], \
        "r1 holds every block its VIEW-CHANGEs name, yet never sends its NEW-VIEW"
    assert all(net.replicas[r].view == 1 and net.replicas[r].active for r in HONEST)


def test_a_new_primary_restarted_while_fetching_fetches_again_and_sends_its_new_view():
    """r1, primary of view 1, lacks block 1 (prepared by r2 and r3) and asks for it; the
    answers are lost, and r1 crashes and restarts: the block it waited for and its fetch
    are gone with its volatile state. The others' VIEW-CHANGEs come again (their resend
    timer): r1 asks again and, the answer arriving, sends its NEW-VIEW re-issuing block 1."""
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: type(env.message) is Commit or (type(env.message) is PrePrepare and dst == "r1")
    net.submit("r0")
    net.deliver_all()
    digest = net.replicas["r2"].log[1].digest
    net.cut = {"r0"}
    net.drop_if = lambda dst, env: type(env.message) is BlockReply
    view_change(net)
    net.deliver_all()
    assert not [env for src, env in net.sent if type(env.message) is NewView]
    net.drop_if = None
    net.restart("r1")
    net.deliver_all()
    r1 = net.replicas["r1"]
    assert r1.view == 1 and not r1.active and not r1.fetching
    net.now += net.replicas["r2"].config.view_change_timeout  # the resend period
    for r in ("r2", "r3"):
        net.fire(r, "view-change-resend")
    net.deliver_all()
    [nv] = [env.message for src, env in net.sent if src == "r1" and type(env.message) is NewView]
    assert [(p.message.seq, p.message.digest) for p in nv.pre_prepares] == [(1, digest)]
    assert all(net.chain(r) == [digest] for r in HONEST)


def test_passing_over_view_changes_never_replaces_a_committed_block():
    """Safety (held): r0 is Byzantine with an old certificate for B at 1 (view 0) that it
    DOES serve, so its VIEW-CHANGE qualifies; X, proposed at 1 in view 1 (r0 cut off then,
    its view-1 VIEW-CHANGE unneeded), prepares at r1, r2, r3 and commits at r3 only. View
    2's primary r2 lacks nothing r1's or r0's VIEW-CHANGE names and builds on r0's and
    r1's, passing r3's (stable point 1) over: O must still re-issue X (r1's view-1
    certificate outranks r0's view-0 one), and every honest chain holds X at 1."""
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: (type(env.message) is Prepare and dst != "r0") or type(env.message) is Commit
    net.submit("r0")
    net.deliver_all()
    proof = net.replicas["r0"].log[1].proof
    b = proof.pre_prepare.message.digest
    net.cut = {"r0"}
    net.drop_if = lambda dst, env: type(env.message) is Commit and env.message.view == 1 and dst != "r3"
    view_change(net)
    net.deliver_all()
    assert net.replicas["r3"].executed == 1 and all(net.replicas[r].executed == 0 for r in ("r1", "r2"))
    x = net.chain("r3")[0]
    assert x != b
    net.cut = set()
    net.drop_if = lambda dst, env: env.signer == "r3" and type(env.message) is ViewChange and dst == "r2"
    vc0 = net.sign("r0", ViewChange(2, 0, (), (proof,)))
    net.step("r2", Receive(net.now, vc0))
    view_change(net)
    net.deliver_all()
    [nv] = [env.message for src, env in net.sent if src == "r2" and type(env.message) is NewView]
    assert sorted(vc.signer for vc in nv.view_changes) == ["r0", "r1", "r2"]
    assert [(p.message.seq, p.message.digest) for p in nv.pre_prepares] == [(1, x)]
    net.drop_if = None
    net.deliver_all()
    assert all(net.chain(r) == [x] for r in HONEST)


def test_a_new_primary_asks_a_later_view_changes_sender_claiming_the_block_it_fetches():
    """docs/messages.md: the primary fetches a block a VIEW-CHANGE names "from the
    VIEW-CHANGE's sender first, then the certificate's other signers". r1, primary of
    view 5, lacks block D. r0's VIEW-CHANGE comes first, naming D with a view-0
    certificate (r0, r1, r2 signed it; r1 and r2 no longer hold D: each accepted, then
    prepared, another block at 1 in a later view and restarted); r2's names nothing, so
    r1 fetches D from r0 (silent), then r2. Then r3's VIEW-CHANGE names D too, with a
    view-4 certificate r3 signed: r3 holds D, and r1 needs r3's VIEW-CHANGE (or r0's) to
    build on. The fetch made for r0's VIEW-CHANGE fixed its holders, so r3, the one
    honest replica holding D, is never asked and view 5 cannot start."""
    from consensus.messages import PreparedProof
    from consensus.replica import BLOCK_TIMER
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: True
    net.submit("r0")
    [pp0] = [env for src, env in net.sent if type(env.message) is PrePrepare]
    digest = pp0.message.digest
    for _ in range(5):
        net.step("r1", TimerFired(net.now, "view-change"))
    r1 = net.replicas["r1"]
    assert r1.view == 5 and not r1.active and r1.held_block(1, digest) is None
    cert0 = PreparedProof(pp0, tuple(net.sign(r, Prepare(0, 1, digest)) for r in ("r1", "r2")))
    pp4 = net.sign("r0", PrePrepare(4, 1, digest, None))
    cert4 = PreparedProof(pp4, tuple(net.sign(r, Prepare(4, 1, digest)) for r in ("r2", "r3")))
    net.step("r1", Receive(net.now, net.sign("r0", ViewChange(5, 0, (), (cert0,)))))
    net.step("r1", Receive(net.now, net.sign("r2", ViewChange(5, 0, (), ()))))
    net.step("r1", Receive(net.now, net.sign("r3", ViewChange(5, 0, (), (cert4,)))))
    for _ in range(4):
        if BLOCK_TIMER in net.timers["r1"]:
            net.fire("r1", BLOCK_TIMER)
    asked = [e.to for e in net.effects["r1"] if type(e) is Send and type(e.message) is BlockRequest]
    assert "r3" in asked, f"r1 asked only {asked} for D"
