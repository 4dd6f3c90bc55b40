"""Adversarial review `revgap` of the fix "a replica behind the NEW-VIEW's min-s keeps O's
entries above its window until state transfer reaches them" (docs/messages.md, "A
replica behind min-s").

Each test scripts one interleaving against the pure replicas of tests/consensus/harness.py."""

from consensus.events import Receive, TimerFired
from consensus.messages import Checkpoint, Commit, NewView, Prepare
from consensus.replica import FETCH_TIMER

from .behind import HONEST, accepted, behind, fetch_ticks, prepare_overtakes_new_view, small_net, view_change
from .harness import Net

def _min_s_by_commit_certificate(net: Net) -> str:
    """r3 misses the CHECKPOINTs (its stable point stays 0, high watermark 4) and block
    4's COMMITs (it holds block 4, prepared, executed 3). No checkpoint at 4 becomes
    stable anywhere (those CHECKPOINTs are lost), so r1's and r2's stable point for the
    view change is block 4's commit certificate. Block 5 then prepares at r1 and r2 (their
    window is (2, 6]); r3 refuses it (above 4); COMMITs lost. r0 is cut."""
    net.drop_if = lambda dst, env: type(env.message) is Checkpoint and (dst == "r3" or env.message.seq == 4)
    for _ in range(3):
        net.submit("r0")
        net.deliver_all()
    assert all(net.replicas[r].low == 2 for r in ("r0", "r1", "r2")) and net.replicas["r3"].low == 0
    lost = net.drop_if
    net.drop_if = lambda dst, env: lost(dst, env) or (type(env.message) is Commit and dst == "r3")
    net.submit("r0")
    net.deliver_all()
    assert all(net.replicas[r].executed == 4 and net.replicas[r].low == 2 for r in ("r0", "r1", "r2"))
    r3 = net.replicas["r3"]
    assert r3.executed == 3 and r3.log[4].prepared and r3.high == 4
    net.drop_if = lambda dst, env: lost(dst, env) or type(env.message) is Commit
    net.submit("r0")
    net.deliver_all()
    digest = net.replicas["r2"].log[5].digest
    assert all(net.replicas[r].log[5].prepared for r in ("r1", "r2"))
    assert 5 not in r3.log
    net.drop_if = None
    net.cut = {"r0"}
    return digest


def test_a_backup_that_executes_min_s_from_the_new_views_commit_certificate_takes_o_up():
    """R1. r3 installs view 1's NEW-VIEW (min-s 4, proved by block 4's commit certificate,
    O = {5}): it executes block 4 from that certificate (it holds the block), but at that
    moment it has executed 3, so it asks for state up to 4 and keeps 5 above its window
    (high watermark 4). Then block 4 executes: there is nothing left to fetch (CatchUp 4
    is answered by its own ledger: no `Adopted`, which is what moves the window), and no
    checkpoint at 4 becomes stable (r1 and r2 have moved their window to 4 with the
    NEW-VIEW, they send no CHECKPOINT again). r3's window stays at (0, 4]: 5 waits in
    ``kept_above`` forever, r3 never sends its PREPARE for 5, and r1 and r2 need it (r0
    is cut): the view stalls until it times out, the gap the fix was to close. Fixed:
    min-s executed from that certificate moves the window to min-s."""
    net = small_net()
    digest = _min_s_by_commit_certificate(net)
    view_change(net)
    net.deliver_all()
    r3 = net.replicas["r3"]
    [nv] = [env.message for src, env in net.sent if src == "r1" and type(env.message) is NewView]
    assert max(vc.message.stable_seq for vc in nv.view_changes) == 4
    assert type(max((vc.message for vc in nv.view_changes), key=lambda vc: vc.stable_seq)
                .checkpoint_proof[0].message) is Commit
    assert r3.view == 1 and r3.active and r3.executed >= 4
    fetch_ticks(net)  # the usual retransmission: two fetch ticks, the block timer
    assert r3.low == 4, f"r3 executed min-s 4 but its window is still ({r3.low}, {r3.high}]"
    assert [p.message.view for p in accepted(net, "r3", 5)] == [1]
    assert all(net.chain(r)[4] == digest for r in HONEST)


def test_a_prepare_for_o_above_the_window_that_overtakes_the_new_view_is_kept():
    """R2. The votes a behind replica keeps for O's entries above its window are those
    that arrive after it installed the NEW-VIEW. r2 installs r1's NEW-VIEW of view 1
    (min-s 4, O = {5}) and sends its PREPARE for 5 at once; that PREPARE reaches r3 (behind,
    high watermark 4, changing to view 1) before the NEW-VIEW does (a NEW-VIEW is large, a
    PREPARE small). In the window r3 would keep it (a vote of the view it changes to); above
    it, it is `beyond-high-watermark`. Caught up, r3 takes 5 up but cannot prepare it, so
    it sends no COMMIT, and r1 and r2 (2 COMMITs, r0 cut) cannot commit 5: only r2's
    retransmission after two fetch ticks unblocks it, the delay keeping votes was meant to
    avoid (docs/messages.md, "A replica behind min-s", "What is kept"). Fixed: while
    changing to a view, its votes one window above H are kept too."""
    prepare_overtakes_new_view(4)


def test_votes_kept_above_the_window_while_changing_view_are_bounded_and_sorted_out_by_the_new_view():
    """R2's bound. While r3 (behind, window (0, 4]) changes to view 1, a faulty r0 floods it
    with PREPAREs and COMMITs of view 1 above its window: one window more, (4, 8], is kept
    (at most one vote per signer, sequence and kind, as in the window), anything further,
    or of another view, is `beyond-high-watermark`. The NEW-VIEW (O = {5}) then leaves only
    the votes for (1, 5, O's digest); a further view change leaves none."""
    net = small_net()
    digest = behind(net, "r3")
    net.step("r3", TimerFired(net.now, "view-change"))
    r3 = net.replicas["r3"]
    assert r3.view == 1 and not r3.active
    before = len(net.drops["r3"])
    for seq in range(5, 13):
        for vote in (Prepare(1, seq, f"{seq:02d}" * 32), Commit(1, seq, f"{seq:02d}" * 32), Prepare(2, seq, digest)):
            net.step("r3", Receive(net.now, net.sign("r0", vote)))
        net.step("r3", Receive(net.now, net.sign("r0", Prepare(1, seq, "ee" * 32))))  # a second digest
    assert net.drops["r3"][before:].count("beyond-high-watermark") == 4 * 3 + 8
    assert net.drops["r3"][before:].count("conflicting-vote") == 4
    assert sorted(r3.log) == [5, 6, 7, 8]
    assert all(len(votes) == 1 for s in (5, 6, 7, 8) for kind in (r3.log[s].prepares, r3.log[s].commits)
               for votes in kind.values())
    view_change(net, ("r1", "r2"))
    net.deliver_all()
    assert r3.active and r3.kept_above == {5: digest}
    assert sorted(s for s in r3.log if s > r3.high) == [5]
    assert set(r3.log[5].prepares) <= {(1, digest)} and set(r3.log[5].commits) <= {(1, digest)}
    view_change(net)
    assert r3.view == 2 and not [s for s in r3.log if s > r3.high]


def test_a_restart_after_min_s_moved_the_window_repeats_the_same_votes():
    """R1, then a crash: r3 executed min-s 4 from the NEW-VIEW's commit certificate, moved
    its window to 4, took 5 up (`Accepted` written before its PREPARE) and crashes before
    5 commits anywhere (its PREPARE lost). Restarted from its store and ledger, it sends
    a PREPARE for 5 again, for the same digest, and 5 commits; never a vote for another."""
    net = small_net()
    digest = _min_s_by_commit_certificate(net)
    net.drop_if = lambda dst, env: env.signer == "r3" and type(env.message) is Prepare
    view_change(net)
    net.deliver_all()
    assert [p.message.digest for p in accepted(net, "r3", 5)] == [digest]
    assert net.stores["r3"].stable_seq == 4
    net.drop_if = None
    net.restart("r3")
    assert net.replicas["r3"].low == 4
    net.deliver_all()
    for _ in range(2):
        for r in HONEST:
            if FETCH_TIMER in net.timers[r]:
                net.fire(r, FETCH_TIMER)
        net.deliver_all()
    votes = {(env.message.view, env.message.digest) for src, env in net.sent
             if src == "r3" and type(env.message) in (Prepare, Commit) and env.message.seq == 5}
    assert votes == {(1, digest)}
    assert all(net.chain(r)[4:5] == [digest] for r in HONEST)


def test_a_new_view_that_skips_views_leaves_no_vote_of_the_earlier_view_kept_above_the_window():
    """Held. r3, behind, installs view 1 (O = {5}) and keeps 5 above its window with r2's
    PREPARE of view 1; then it is cut off while r0, r1, r2 move on to view 2 (no vote of
    view 1 gets through: 5 prepares in no view above 0). View 2's NEW-VIEW (O = {5}, the
    same block) reaches r3 directly, still active in view 1: it keeps 5 again for view 2,
    and r2's PREPARE of view 1 is gone (it must not count towards view 2)."""
    net = small_net()
    digest = behind(net, "r3")
    view_change(net)
    net.deliver_all()
    r3 = net.replicas["r3"]
    assert r3.kept_above == {5: digest} and (1, digest) in r3.log[5].prepares
    net.cut = {"r3"}
    net.drop_if = lambda dst, env: type(env.message) in (Prepare, Commit)
    net.step("r0", TimerFired(net.now, "view-change"))  # r0 asks for view 1's NEW-VIEW
    net.deliver_all()
    assert net.replicas["r0"].view == 1 and net.replicas["r0"].active
    view_change(net, ("r0", "r1", "r2"))
    net.deliver_all()
    assert all(net.replicas[r].view == 2 and net.replicas[r].active for r in ("r0", "r1", "r2"))
    net.drop_if = None
    net.cut = set()
    [nv] = [env for src, env in net.sent if src == "r2" and type(env.message) is NewView and env.message.view == 2]
    assert [(p.message.seq, p.message.digest) for p in nv.message.pre_prepares] == [(5, digest)]
    net.step("r3", Receive(net.now, nv))
    assert r3.view == 2 and r3.active and r3.kept_above == {5: digest}
    assert all(k[0] == 2 for k in list(r3.log.get(5).prepares if 5 in r3.log else ()))
    assert 5 not in r3.deferred or r3.deferred[5][0].message.view == 2
    net.deliver_all()  # view 1's block went with view 1's entry: fetched again
    assert r3.deferred[5][0].message.view == 2
    net.adopt("r3", "r2", 4)
    net.deliver_all()
    for _ in range(2):  # view 2's votes were lost with view 1's: the usual retransmission
        for r in net.names:
            if FETCH_TIMER in net.timers[r]:
                net.fire(r, FETCH_TIMER)
        net.deliver_all()
    assert all(net.chain(r)[4:5] == [digest] for r in net.names)
