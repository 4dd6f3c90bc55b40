"""The three bugs of the safety review, as scripted interleavings over real nodes (n = 4).

Each failed on the code before its fix (they were committed as strict xfails
first) and passes after. docs/durable-state.md explains the fixes.
"""

from tests.twins.world import COMMIT, NV, PP, PREPARE, VC, Cut, Round, Script, World

N0, N1, N2, N3 = "node-00", "node-01", "node-02", "node-03"


def isolated(node: str, *phases: str) -> tuple:
    return tuple((p, Cut("iso", node)) for p in (phases or (PP, PREPARE, COMMIT, VC, NV)))


def test_bug1_a_byzantine_new_primary_cannot_fork_through_replicas_that_missed_its_new_view():
    """View 0: node-00 pre-prepares d, everyone prepares it, only node-00 hears the COMMITs
    and commits d; it serves no state transfer. View 1: node-01 (Byzantine, the new
    primary) sends its valid NEW-VIEW (O = {1: d}) to node-00 only, and its own block
    d' for (view 1, seq 1) with its COMMIT to node-02 and node-03. node-00 works in view
    1 (it prepares d), so node-02 and node-03 see f + 1 replicas there: that must not
    let them into view 1 without its NEW-VIEW."""
    script = Script(4, (
        Round(cuts=((COMMIT, Cut("only", N0)),), other=Cut("iso", N0)),
        Round(cuts=isolated(N0, VC), other=Cut("iso", N0)),
    ), byzantine=(Script.bad("node-1", "split-new-view", targets=("node-0",)),))
    outcome = World(script).play()
    assert outcome.safe, outcome.detail
    assert outcome.live, outcome.detail


def test_bug2_restarted_replicas_keep_their_prepared_certificates():
    """No Byzantine node. View 0: node-03 hears no PRE-PREPARE; node-01 and node-02 prepare
    d and only node-00 commits it; node-00 serves no state transfer. node-01 and node-02
    restart as view 0 ends; node-00 is cut off in view 1. The VIEW-CHANGEs of node-01
    and node-02 must still carry d's prepared certificate."""
    script = Script(4, (
        Round(cuts=isolated(N3, PP) + ((COMMIT, Cut("only", N0)),), other=Cut("iso", N0), restarts=(N1, N2)),
        Round(cuts=isolated(N0), other=Cut("iso", N0)),
    ))
    outcome = World(script).play()
    assert outcome.safe, outcome.detail
    assert outcome.live, outcome.detail


def test_bug3_replicas_restarting_during_a_view_change_finish_it():
    """Nothing faulty. View 0's PRE-PREPARE is lost, so every replica moves to view 1;
    only node-00 hears the VIEW-CHANGEs, then node-01..03 restart, mid view change."""
    script = Script(4, (
        Round(cuts=((PP, Cut("only", N0)),)),
        Round(cuts=((VC, Cut("only", N0)),), restarts=(N1, N2, N3)),
    ))
    outcome = World(script).play()
    assert outcome.safe, outcome.detail
    assert outcome.live, outcome.detail


def test_found_by_the_search_a_new_primary_does_not_propose_below_the_new_views_stable_point():
    """Found by tests/twins/search.py after the three fixes (no Byzantine node). node-00
    alone commits d in view 0, then joins view 1's view change with d's commit
    certificate as its stable point. View 1's NEW-VIEW reaches nobody; node-02 and
    node-03 restart. View 2's NEW-VIEW has min-s = 1 from that certificate and an
    empty O: its primary must fetch block 1, not propose a new block at sequence 1."""
    script = Script(4, (
        Round(cuts=((COMMIT, Cut("only", N0)),), other=Cut("iso", N0)),
        Round(cuts=((NV, Cut("only", N1)),), other=Cut("iso", N0), restarts=(N2, N3)),
    ))
    outcome = World(script).play()
    assert outcome.safe, outcome.detail
    assert outcome.live, outcome.detail


def test_bug2_at_n7_as_the_review_wrote_it():
    """n = 7, f = 2, no Byzantine node: node-01..04 prepare d, only node-00 collects a
    commit quorum and is then cut off; node-01..04 crash and restart one at a time."""
    n0, n5, n6 = "node-00", "node-05", "node-06"
    script = Script(7, (
        Round(cuts=((PP, Cut("iso", n5)), (PP, Cut("iso", n6)), (COMMIT, Cut("only", n0))), other=Cut("iso", n0),
              restarts=("node-01", "node-02", "node-03", "node-04")),
        Round(cuts=isolated(n0), other=Cut("iso", n0)),
    ))
    outcome = World(script).play()
    assert outcome.safe, outcome.detail
    assert outcome.live, outcome.detail


def test_a_new_primary_restarting_right_after_its_new_view_keeps_o_at_n7():
    """n = 7, no Byzantine node (the review's second form of bug 1): d commits at node-00
    only. node-01, primary of view 1, sends its NEW-VIEW (carrying d) to node-02 and
    node-03 only, then crashes and restarts. It must not propose another block at
    sequence 1 (it wrote its NEW-VIEW down before sending it), and node-04..06, which see
    node-01..03 work in view 1, enter it only through that NEW-VIEW."""
    n0 = "node-00"
    nv_only_to_2_and_3 = tuple((NV, Cut("iso", x)) for x in (n0, "node-04", "node-05", "node-06"))
    script = Script(7, (
        Round(cuts=((PP, Cut("iso", "node-05")), (PP, Cut("iso", "node-06")), (COMMIT, Cut("only", n0))),
              other=Cut("iso", n0)),
        Round(cuts=((VC, Cut("iso", n0)),) + nv_only_to_2_and_3, other=Cut("iso", n0), restarts=("node-01",)),
        Round(cuts=isolated(n0), other=Cut("iso", n0)),
    ))
    outcome = World(script).play()
    assert outcome.safe, outcome.detail
    assert outcome.live, outcome.detail


# Found by a second adversarial review: stalls the NEW-VIEW timer rule caused before a
# quorum "for our view or above" started it and stale VIEW-CHANGEs were answered.

def test_a_view_change_lost_on_the_way_out_does_not_stall_real_nodes():
    """n = 4, node-01 (primary of view 1) is silent (f = 1). View 0: the PRE-PREPARE is
    lost, the backups time out. View 1: only node-00 hears the VIEW-CHANGEs (a one-way
    cut), so only it holds a quorum and arms its NEW-VIEW timer; it moves to view 2.
    Then nothing is cut any more."""
    script = Script(4, (
        Round(cuts=((PP, Cut("iso", N0)),)),
        Round(cuts=((VC, Cut("only", N0)),)),
    ), byzantine=(Script.bad("node-1", "silent"),))
    outcome = World(script).play()
    assert outcome.safe, outcome.detail
    assert outcome.live, outcome.detail


def test_restarts_and_a_lost_new_view_do_not_stall_real_nodes():
    """n = 4, node-02 silent. v0: only node-02 hears the PRE-PREPARE; node-01, node-03
    restart. v1: node-01's NEW-VIEW reaches nobody; node-03 restarts. No VIEW-CHANGE is
    ever cut. Passes at HEAD~1."""
    from tests.twins.world import NV
    script = Script(4, (
        Round(cuts=((PP, Cut("only", "node-02")), (NV, Cut("iso", "node-01"))), restarts=("node-01", "node-03")),
        Round(cuts=((NV, Cut("iso", "node-01")),), restarts=("node-03",)),
    ), byzantine=(Script.bad("node-2", "silent"),))
    outcome = World(script).play()
    assert outcome.safe, outcome.detail
    assert outcome.live, outcome.detail
