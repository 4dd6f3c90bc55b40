"""Liveness of view changes under lost messages, restarts and long absences (section 4.5.2).

Found by an adversarial review of the NEW-VIEW timer rule; each failed before the fix:
a quorum of VIEW-CHANGEs for our view *or above* starts the NEW-VIEW timer, and a replica
past a view answers a VIEW-CHANGE for it with the NEW-VIEW that installed its own view.
"""

from consensus.events import Receive
from consensus.messages import NewView, PrePrepare

from tests.consensus.harness import Net


def test_a_lost_view_change_does_not_stall_the_view_change_for_good():
    """n = 4, r1 (primary of view 1) is down for good (f = 1). r2, r3 time out and move to
    view 1; r0 joins them (f + 1 VIEW-CHANGEs). r0's VIEW-CHANGE(1) is lost on the way to
    r2 and r3 (a one-way cut), so only r0 holds a quorum for view 1: only r0 arms the
    NEW-VIEW timer, which fires, and r0 moves to view 2. Then the network heals for good."""
    net = Net(4, block_size=1)
    net.cut = {"r1"}  # crashed, never comes back
    for name in ("r2", "r3"):
        net.step(name, Receive(0, net.request()))
    net.drop_if = lambda dst, env: env.signer == "r0" and dst in ("r2", "r3")  # one-way cut
    for name in ("r2", "r3"):
        net.fire(name, "view-change")
    net.deliver_all()
    assert [net.replicas[r].view for r in ("r0", "r2", "r3")] == [1, 1, 1]
    assert "view-change" in net.timers["r0"]
    assert "view-change" not in net.timers["r2"] and "view-change" not in net.timers["r3"]
    net.fire("r0", "view-change")  # no NEW-VIEW from r1: r0 tries view 2
    net.deliver_all()
    net.drop_if = None  # the cut heals
    for _ in range(20):  # time passes: every timer that runs fires, clients keep asking
        for name in ("r0", "r2", "r3"):
            net.step(name, Receive(0, net.request()))
            for timer in list(net.timers[name]):
                net.fire(name, timer)
        net.deliver_all()
    state = {r: (net.replicas[r].view, net.replicas[r].active, sorted(net.timers[r])) for r in ("r0", "r2", "r3")}
    print(state)
    assert any(net.heights()[r] > 0 for r in ("r0", "r2", "r3")), f"stuck for good: {state}"


def test_two_restarts_do_not_stall_the_view_change_for_good():
    """Same stall with no message lost: r1 is silent for good (f = 1 Byzantine or down).
    r0, r2, r3 all reach a quorum for view 1 and arm their NEW-VIEW timers. r0 re-sends
    its VIEW-CHANGE(1) (RESEND_TIMER, started before its NEW-VIEW timer, same period);
    then r2 and r3 restart one after the other: they forget the VIEW-CHANGEs they held
    and their timers. r0's NEW-VIEW timer fires before its next re-send: r0 moves to
    view 2 and never sends VIEW-CHANGE(1) again. r2, r3 hold 2 < q for view 1, 1 < f+1
    above it: nobody has a NEW-VIEW timer, for good."""
    net = Net(4, block_size=1)
    net.cut = {"r1"}
    for name in ("r2", "r3"):
        net.step(name, Receive(0, net.request()))
    for name in ("r2", "r3"):
        net.fire(name, "view-change")
    net.deliver_all()
    assert all("view-change" in net.timers[r] for r in ("r0", "r2", "r3"))
    net.fire("r0", "view-change-resend")
    net.deliver_all()
    net.restart("r2")
    net.deliver_all()
    net.restart("r3")
    net.deliver_all()
    net.fire("r0", "view-change")
    net.deliver_all()
    for _ in range(20):
        for name in ("r0", "r2", "r3"):
            net.step(name, Receive(0, net.request()))
            for timer in list(net.timers[name]):
                net.fire(name, timer)
        net.deliver_all()
    state = {r: (net.replicas[r].view, net.replicas[r].active, sorted(net.timers[r])) for r in ("r0", "r2", "r3")}
    assert any(net.heights()[r] > 0 for r in ("r0", "r2", "r3")), f"stuck for good: {state}"


def test_a_replica_more_than_16_views_behind_rejoins():
    """n = 4. r3 is down (f = 1) while r0..r2 go through 20 view changes whose NEW-VIEWs
    are lost (PRE-PREPAREs are lost too: nothing commits, so no state transfer is
    needed). The NEW-VIEW of view 22 gets through; then r3 is back and nothing is lost
    any more. Later r0 fails for good (f = 1 again). r1, r2, r3 are honest and up, but
    r3 drops every message of a view more than MAX_FUTURE_VIEWS above its own (no
    evidence, so no NEW-VIEW-REQUEST), and with the quorum rule for the NEW-VIEW timer
    it no longer walks up by itself: nothing ever commits again."""
    net = Net(4, block_size=1)
    net.cut = {"r3"}
    net.drop_if = lambda dst, env: type(env.message) in (NewView, PrePrepare)
    for name in ("r0", "r1", "r2"):
        net.step(name, Receive(0, net.request()))
    for name in ("r1", "r2"):
        net.fire(name, "view-change")
    net.deliver_all()
    for _ in range(21):
        for name in ("r0", "r1", "r2"):
            if "view-change" in net.timers[name]:
                net.fire(name, "view-change")
        net.deliver_all()
        net.drop_if = (lambda dst, env: type(env.message) is PrePrepare) if _ == 19 else net.drop_if
    view = net.replicas["r1"].view
    assert view > 16 and all(net.replicas[r].view == view and net.replicas[r].active for r in ("r0", "r1", "r2"))
    net.cut = set()  # r3 is back, after the NEW-VIEW went out
    net.deliver_all()
    net.drop_if = None
    net.cut = {"r0"}  # later, r0 fails for good
    for _ in range(30):
        for name in ("r1", "r2", "r3"):
            net.step(name, Receive(0, net.request()))
            for timer in list(net.timers[name]):
                net.fire(name, timer)
        net.deliver_all()
    state = {r: (net.replicas[r].view, net.replicas[r].active, net.heights()[r]) for r in ("r1", "r2", "r3")}
    assert max(net.heights()[r] for r in ("r1", "r2", "r3")) > 0, f"stuck for good: {state}"
