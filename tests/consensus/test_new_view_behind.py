"""A replica behind the stable point of the NEW-VIEW it installs keeps O's entries above
its high watermark until state transfer brings the window up to them (docs/messages.md,
"A replica behind min-s").

The interleaving that breaks the naive fix (accept O's entries above the window as they
come): r1, behind (executed 0, high watermark 4), installs a NEW-VIEW with min-s 4 and
O = {5}. Accepted at once, 5 would be checked against a chain r1 does not have yet (its
header names block 4's hash and state root), `Accepted` written and a PREPARE sent for a
block it never checked; held back instead but without its votes, r1 never prepares 5 when
it catches up (its peers' PREPAREs came while 5 was above its window and were dropped, and
r0 is cut off: r1's COMMIT is needed). And kept across a view change, the entry would be
taken up in a view it no longer belongs to. Each test scripts one of these interleavings
against the pure replicas of tests/consensus/harness.py."""

from consensus.effects import Broadcast, Send
from consensus.events import Receive
from consensus.messages import BlockRequest, Commit, NewView, Prepare
from consensus.replica import BLOCK_TIMER, FETCH_TIMER

from .behind import HONEST, accepted, behind, small_net, view_change
from .harness import Net


def _prepares_sent(net: Net, name: str, seq: int) -> list:
    return [e.message for e in net.effects[name]
            if type(e) is Broadcast and type(e.message) is Prepare and e.message.seq == seq]


def test_a_backup_behind_min_s_keeps_o_above_its_window_and_prepares_it_once_caught_up():
    """r3 is behind (high watermark 4) when it installs r1's NEW-VIEW of view 1 (min-s 4,
    O = {5}): it fetches block 5 and keeps the entry, writes nothing and sends no PREPARE
    for it (its chain is at 0). r2's PREPARE for 5 arrives meanwhile and is kept too.
    r1 and r2 need r3's PREPARE (r0 is cut off): once r3 adopts 1..4, it takes 5 up,
    prepares it with r2's kept PREPARE, and all three commit 5 without any timer."""
    net = small_net()
    digest = behind(net, "r3")
    view_change(net)
    net.deliver_all()
    r3 = net.replicas["r3"]
    assert r3.view == 1 and r3.active and r3.executed == 0
    assert BlockRequest(5, digest) in [e.message for e in net.effects["r3"] if type(e) is Send]
    assert r3.held_block(5, digest) is not None
    assert r3.kept_above == {5: digest}
    assert not accepted(net, "r3", 5) and not _prepares_sent(net, "r3", 5)
    assert "r2" in r3.log[5].prepares[(1, digest)]
    assert "beyond-high-watermark" not in net.drops["r3"]
    assert net.catch_ups["r3"][-1].target == 4
    assert all(net.replicas[r].executed == 4 for r in ("r1", "r2"))
    net.adopt("r3", "r2", 4)
    assert r3.kept_above == {}
    assert [p.message.view for p in accepted(net, "r3", 5)] == [1]
    net.deliver_all()
    assert all(net.chain(r)[4] == digest for r in HONEST)


def test_votes_above_the_window_count_only_for_a_kept_entry_of_this_view():
    """The bound: above its window a behind replica keeps votes only for (this view, a
    sequence O re-issued above it, that entry's digest); any other PREPARE there is
    still `beyond-high-watermark`, so a faulty peer cannot fill its log."""
    net = small_net()
    digest = behind(net, "r3")
    view_change(net)
    net.deliver_all()
    r3 = net.replicas["r3"]
    before = len(net.drops["r3"])
    for vote in (Prepare(1, 6, digest), Prepare(1, 5, "ab" * 32), Prepare(2, 5, digest), Prepare(1, 8, "cd" * 32)):
        net.step("r3", Receive(net.now, net.sign("r0", vote)))
    assert net.drops["r3"][before:] == ["beyond-high-watermark"] * 4
    assert sorted(r3.log) == [5] and list(r3.log[5].prepares) == [(1, digest)]


def test_a_lagging_primary_restarted_after_taking_up_its_new_view_fetches_again_and_commits():
    """r1, primary of view 1 and behind (high watermark 4), takes up its own NEW-VIEW
    (min-s 4, O = {5}) and keeps 5 above its window, then crashes: the kept entry, the
    block it fetched and the PREPAREs it kept were volatile, and nothing was written or
    sent on their strength (no `Accepted` for 5). Restarted, it asks again for the state
    up to min-s (CatchUp 4) and for block 5, keeps it again, and once caught up takes it
    up; r2's and r3's PREPAREs come again with their retransmission (two fetch ticks of
    5 stuck uncommitted), and 5 commits everywhere."""
    net = small_net()
    digest = behind(net, "r1")
    view_change(net)
    net.deliver_all()
    assert [env.message.view for src, env in net.sent if src == "r1" and type(env.message) is NewView] == [1]
    assert net.replicas["r1"].kept_above == {5: digest}
    assert not accepted(net, "r1", 5)
    assert net.stores["r1"].installed_view == 1 and 5 not in net.stores["r1"].accepted
    net.restart("r1")
    r1 = net.replicas["r1"]
    assert r1.view == 1 and r1.active and r1.executed == 0
    assert r1.held_block(5, digest) is None  # gone with the process
    assert [c.target for c in net.catch_ups["r1"]][-1] == 4
    assert BlockRequest(5, digest) in [e.message for e in net.effects["r1"][-10:] if type(e) is Send]
    net.deliver_all()  # r2 served r1 block 5 a moment ago (block-already-served): the next holder
    net.fire("r1", BLOCK_TIMER)
    net.deliver_all()
    assert r1.held_block(5, digest) is not None and r1.kept_above == {5: digest}
    net.adopt("r1", "r2", 4)
    assert [p.message.view for p in accepted(net, "r1", 5)] == [1]
    net.deliver_all()
    assert all(net.replicas[r].executed == 4 for r in HONEST)  # r1's peers' PREPAREs were lost with it
    for _ in range(2):
        for r in ("r2", "r3"):
            net.fire(r, FETCH_TIMER)
        net.deliver_all()
    assert all(net.chain(r)[4] == digest for r in HONEST)


def test_a_second_view_change_drops_the_entries_kept_above_the_window():
    """r1, primary of view 1 and behind, keeps O's 5 above its window; the view times out
    before it catches up and r1, r2, r3 move to view 2. The kept entry, its block and its
    votes go (the view they belong to is over): votes of view 1 above the window are
    refused again, and adopting 1..4 then takes nothing of view 1 up (no `Accepted`, no
    COMMIT of view 1 from r1). View 2's primary r2 re-issues 5 (r2's and r3's view-1
    certificates); r1, a behind backup now, keeps it again, prepares it once caught up,
    and 5 commits everywhere in view 2."""
    net = small_net()
    digest = behind(net, "r1")
    # r1's NEW-VIEW reaches r2 and r3, but their PREPAREs for 5 do not reach r1 (a
    # delay): view 1 makes no progress before it times out.
    net.drop_if = lambda dst, env: dst == "r1" and type(env.message) is Prepare
    view_change(net)
    net.deliver_all()
    r1 = net.replicas["r1"]
    assert r1.kept_above == {5: digest} and 5 in r1.deferred
    net.drop_if = None
    view_change(net)
    assert r1.view == 2 and not r1.active
    assert r1.kept_above == {} and 5 not in r1.deferred and 5 not in r1.log
    late = net.sign("r2", Prepare(1, 5, digest))
    net.step("r1", Receive(net.now, late))
    assert net.drops["r1"][-1] == "old-view"
    net.adopt("r1", "r2", 4)
    assert not accepted(net, "r1", 5)
    assert not [env for src, env in net.sent if src == "r1" and type(env.message) is Commit and env.message.seq == 5]
    net.deliver_all()  # r1 fetches block 5 again (r2 served it a moment ago: the next holder)
    net.fire("r1", BLOCK_TIMER)
    net.deliver_all()
    [nv] = [env.message for src, env in net.sent if src == "r2" and type(env.message) is NewView]
    assert [(p.message.seq, p.message.digest) for p in nv.pre_prepares] == [(5, digest)]
    assert all(net.replicas[r].view == 2 and net.replicas[r].active for r in HONEST)
    assert [p.message.view for p in accepted(net, "r1", 5)] == [2]
    assert all(net.chain(r)[4] == digest for r in HONEST)
