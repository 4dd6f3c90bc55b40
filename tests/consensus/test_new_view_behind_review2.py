"""Adversarial review `revgap2` of the review fixes R1 (min-s executed from the NEW-VIEW's
commit certificate moves the window) and R2 (votes of the view being changed to kept one
window above H). Each test scripts one interleaving against tests/consensus/harness.py."""

from consensus.events import Receive, TimerFired
from consensus.messages import Commit, NewView, Prepare, ViewChange

from .behind import HONEST, fetch_ticks, prepare_overtakes_new_view, small_net, view_change
from .test_new_view_behind_review import _min_s_by_commit_certificate


def test_after_r1_the_next_view_change_proves_its_stable_point_and_carries_what_it_prepared():
    """R1, then a view change. r3 moved its window to min-s 4 with block 4's commit
    certificate (its own COMMIT quorum, not a checkpoint) and prepared 5 in view 1; 5's
    COMMITs are all lost. Then view 2: r3's VIEW-CHANGE names stable point 4 proved by a
    commit certificate and 5's prepared certificate; r1 and r2 must accept it (no
    `bad-view-change-*`), and view 2's O re-issues 5 with the same digest."""
    net = small_net()
    digest = _min_s_by_commit_certificate(net)
    net.drop_if = lambda dst, env: type(env.message) is Commit and env.message.seq == 5
    view_change(net)
    net.deliver_all()
    fetch_ticks(net)
    r3 = net.replicas["r3"]
    assert r3.view == 1 and r3.low == 4 and r3.log[5].prepared and r3.log[5].digest == digest
    before = {r: len(net.drops[r]) for r in HONEST}
    net.drop_if = None
    view_change(net)
    net.deliver_all()
    [vc] = [env.message for src, env in net.sent
            if src == "r3" and type(env.message) is ViewChange and env.message.view == 2]
    assert vc.stable_seq == 4 and len({c.signer for c in vc.checkpoint_proof}) >= 3
    assert [(p.pre_prepare.message.seq, p.pre_prepare.message.digest) for p in vc.prepared] == [(5, digest)]
    for r in ("r1", "r2"):
        assert not [d for d in net.drops[r][before[r]:] if d.startswith("bad-view-change")], net.drops[r][before[r]:]
        assert net.replicas[r]._invalid_view_change(vc) is None
    [nv] = [env.message for src, env in net.sent if type(env.message) is NewView and env.message.view == 2]
    assert [(p.message.seq, p.message.digest) for p in nv.pre_prepares] == [(5, digest)]
    fetch_ticks(net)
    assert all(net.chain(r)[4:5] == [digest] for r in HONEST)


import pytest  # noqa: E402


@pytest.mark.xfail(strict=True, reason="R2 keeps votes that overtake the NEW-VIEW only for (H, H + L]: a "
                   "replica behind min-s by more than one window drops them (beyond-high-watermark) and "
                   "O's entry waits for a retransmission (two fetch ticks)")
def test_a_prepare_that_overtakes_the_new_view_at_a_replica_two_windows_behind_is_kept():
    """R2's limit. r3 is two windows behind (window (0, 4]) when it changes to view 1;
    view 1's NEW-VIEW has min-s 8 and O = {9}. r2 installs it and sends its PREPARE for 9
    at once, which reaches r3 before the NEW-VIEW (a vote is small, a NEW-VIEW large). 9 is
    above H + L = 8, so R2 does not keep it: `beyond-high-watermark`. Once r3 has adopted
    1..8 and taken 9 up, it cannot prepare 9 (r1 sends no PREPARE as primary, r2's is
    gone), so 9 does not commit (r0 cut, r1 and r2 need r3's COMMIT) without a
    retransmission: the delay R2 was made to remove, still there one window further.
    (O lies in (min-s, min-s + L]; keeping, while changing view, votes up to the highest
    min-s any valid VIEW-CHANGE could name is not bounded by the replica's own window.)"""
    prepare_overtakes_new_view(8)


def test_votes_above_the_window_stay_bounded_over_many_view_changes():
    """R2's bound, repeated: r3 starts view change after view change (its timer, nobody
    follows); before each, a faulty r0 floods it with PREPAREs and COMMITs of that view,
    and of the next views, for every sequence up to 3L, each with two digests. Whatever
    the number of view changes, r3 holds at most one window of slots above H, each with
    at most one vote per kind (r0's), and none of a view it has left."""
    net = small_net()
    r3 = net.replicas["r3"]
    L = r3.window
    for target in range(1, 9):
        net.step("r3", TimerFired(net.now, "view-change"))
        assert r3.view == target and not r3.active
        for view in (r3.view, r3.view + 1, r3.view + 2):
            for seq in range(1, 3 * L + 1):
                for digest in ("aa" * 32, "bb" * 32):
                    net.step("r3", Receive(net.now, net.sign("r0", Prepare(view, seq, digest))))
                    net.step("r3", Receive(net.now, net.sign("r0", Commit(view, seq, digest))))
        above = [s for s in r3.log if s > r3.high]
        assert len(above) <= L and all(s <= r3.high + L for s in above)
        for s in above:
            for kind in (r3.log[s].prepares, r3.log[s].commits):
                assert {k[0] for k in kind} <= {r3.view} and sum(len(v) for v in kind.values()) <= 1
        assert len(r3.log) <= 2 * L
