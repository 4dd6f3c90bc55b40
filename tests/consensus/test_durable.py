"""Crash-recovery: the durable protocol state is written before the messages that depend
on it, and a replica restored from it behaves as the replica it was (docs/durable-state.md)."""

from consensus.durable import (Accepted, DurableState, NewViewBuilt, Proposed, Stabilised, ViewChangeSent,
                               ViewInstalled)
from consensus.effects import Broadcast, Persist
from consensus.events import Receive
from consensus.messages import Commit, NewView, PrePrepare, Prepare, ViewChange

from .harness import Net


def ordered(net, name):
    """(kind of record or of message sent) for every Persist and Broadcast, in order."""
    out = []
    for e in net.effects[name]:
        if type(e) is Persist:
            out.append(type(e.record).__name__)
        elif type(e) is Broadcast:
            out.append(type(e.message).__name__)
    return out


def before(seq: list[str], first: str, then: str) -> bool:
    return then in seq and first in seq and seq.index(first) < seq.index(then)


def test_every_record_is_written_before_the_message_that_depends_on_it():
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: type(env.message) is Commit and dst != "r0"
    net.submit("r0")
    net.deliver_all()
    assert before(ordered(net, "r0"), "Proposed", "PrePrepare")
    assert before(ordered(net, "r1"), "Accepted", "Prepare")
    assert before(ordered(net, "r1"), "Prepared", "Commit")
    net.drop_if = None
    net.cut = {"r0"}
    net.fire_all("view-change")
    net.deliver_all()
    assert before(ordered(net, "r2"), "ViewChangeSent", "ViewChange")
    assert before(ordered(net, "r1"), "NewViewBuilt", "NewView")
    r2 = ordered(net, "r2")
    installed = r2.index("ViewInstalled")
    assert "Prepare" in r2[installed:] and r2.index("ViewChange") < installed


def test_a_restarted_backup_keeps_its_prepared_certificate_for_its_view_change():
    """Bug 2 at replica level: r1..r3 prepare d, nobody but r0 commits; r1 and r2 restart.
    Their VIEW-CHANGEs still carry d, so view 1 re-issues d."""
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: type(env.message) is Commit and dst != "r0"
    net.submit("r0")
    net.deliver_all()
    digest = net.chain("r0")[0]
    net.restart("r1")
    net.restart("r2")
    net.drop_if = None
    net.cut = {"r0"}
    for name in ("r1", "r2", "r3"):
        net.step(name, Receive(0, net.request()))  # a client's retry arms their timers
    net.fire_all("view-change")
    net.deliver_all()
    vcs = [env for _, env in net.sent if type(env.message) is ViewChange]
    assert all([p.pre_prepare.message.digest for p in vc.message.prepared] == [digest] for vc in vcs)
    [nv] = [env for _, env in net.sent if type(env.message) is NewView]
    assert [p.message.digest for p in nv.message.pre_prepares] == [digest]
    assert all(net.chain(r)[:1] == [digest] for r in ("r1", "r2", "r3"))


def test_a_restarted_replica_refuses_a_second_pre_prepare_for_what_it_accepted():
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: type(env.message) in (Prepare, Commit)
    net.submit("r0")
    net.deliver_all()
    [accepted] = [env for _, env in net.sent if type(env.message) is PrePrepare]
    net.restart("r2")
    other = net.replicas["r2"].log[1]
    assert other.pre_prepare is accepted and other.view == 0
    from dataclasses import replace
    from consensus.block import Block
    header = replace(accepted.message.block.header, timestamp=accepted.message.block.header.timestamp + 1)
    forged = Block(header, accepted.message.block.requests, header.compute_hash())
    net.step("r2", Receive(0, net.sign("r0", PrePrepare(0, 1, forged.hash, forged))))
    assert net.drops["r2"][-1] == "conflicting-pre-prepare"


def test_a_restarted_primary_sends_the_same_proposal_again_and_no_other():
    net = Net(4, block_size=1)
    net.cut = {"r1", "r2", "r3"}
    net.submit("r0")
    net.deliver_all()
    [first] = [env for _, env in net.sent if type(env.message) is PrePrepare]
    net.restart("r0")
    net.cut = set()
    net.deliver_all()
    pps = [env for _, env in net.sent if type(env.message) is PrePrepare]
    assert {env.message.digest for env in pps} == {first.message.digest}
    net.submit("r0")  # a new request must not take sequence 1 in view 0
    net.deliver_all()
    assert len({net.chain(r)[0] for r in net.names}) == 1 and net.chain("r1")[0] == first.message.digest


def test_a_replica_restarted_during_a_view_change_sends_its_view_change_again():
    """Bug 3 at replica level: r1..r3 move to view 1, and r2 restarts before any
    VIEW-CHANGE reached it. It sends the same VIEW-CHANGE again, so the view change ends."""
    net = Net(4, block_size=1)
    net.cut = {"r0"}
    for name in ("r1", "r2", "r3"):
        net.step(name, Receive(0, net.request()))
    for name in ("r1", "r2", "r3"):
        net.fire(name, "view-change")
    sent = [env for src, env in net.sent if src == "r2" and type(env.message) is ViewChange]
    net.restart("r2")
    again = [env for src, env in net.sent if src == "r2" and type(env.message) is ViewChange]
    assert len(again) == 2 and again[1].message == sent[0].message and again[1].data == sent[0].data
    net.deliver_all()
    assert all(net.replicas[r].view == 1 and net.replicas[r].active for r in ("r1", "r2", "r3"))


def test_the_new_view_timer_starts_with_a_quorum_of_view_changes_sec_4_5_2():
    """A replica alone in a view change does not race on to later views by itself."""
    net = Net(4, block_size=1)
    net.step("r3", Receive(0, net.request()))
    net.fire("r3", "view-change")
    assert net.replicas["r3"].view == 1 and "view-change" not in net.timers["r3"]
    for name in ("r1", "r2"):
        net.step("r3", Receive(0, net.sign(name, ViewChange(1, 0, (), ()))))
    assert "view-change" in net.timers["r3"]


def test_durable_state_keeps_the_highest_view_and_forgets_below_the_stable_point():
    net = Net(4, block_size=1)
    state = DurableState()
    def pp(view, seq, signer="r0"):
        from consensus.block import Block, BlockHeader, tx_root
        req = net.request()
        header = BlockHeader("test", seq, "00" * 32, tx_root((req,)), "11" * 32, view, signer, seq)
        block = Block(header, (req,), header.compute_hash())
        return net.sign(signer, PrePrepare(view, seq, block.hash, block))
    low, high = pp(0, 3), pp(2, 3, "r2")
    state.apply(Accepted(high))
    state.apply(Accepted(low))
    assert state.accepted[3] is high
    state.apply(Proposed(pp(1, 4, "r1").message))
    state.apply(ViewChangeSent(ViewChange(2, 0, (), ())))
    assert (state.view, state.active) == (2, False)
    state.apply(ViewInstalled(2, None))
    assert (state.view, state.active, state.installed_view, state.view_change) == (2, True, 2, None)
    state.apply(ViewChangeSent(ViewChange(1, 0, (), ())))  # never back to a lower view
    assert (state.view, state.active) == (2, True)
    state.apply(NewViewBuilt(5))
    assert state.built_new_view == 5
    state.apply(Stabilised(3, ()))
    assert 3 not in state.accepted and 4 in state.proposed
    state.apply(Accepted(pp(3, 2)))
    assert 2 not in state.accepted  # below the stable point: nothing to keep
    assert not state.prepared


# Found by an adversarial review of the first fixes: the installed NEW-VIEW's O must be
# taken up again after a restart.


def test_restarted_primary_does_not_re_propose_a_sequence_its_new_view_assigned():
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: type(env.message) is Commit
    net.submit("r0")
    net.deliver_all()
    b1 = net.replicas["r1"].log[1].digest
    net.fire_all("view-change")
    net.deliver_all()
    assert all(net.replicas[r].view == 1 and net.replicas[r].active for r in net.names)
    net.restart("r1")
    net.submit("r1")
    net.deliver_all()
    sent = {p.message.digest for src, env in net.sent if src == "r1" and type(env.message) is NewView
            for p in env.message.pre_prepares if p.message.seq == 1}
    sent |= {env.message.digest for src, env in net.sent
             if src == "r1" and type(env.message) is PrePrepare and (env.message.view, env.message.seq) == (1, 1)}
    assert sent == {b1}, f"r1 sent {len(sent)} different PRE-PREPAREs for (view 1, seq 1)"


def test_no_fork_when_a_new_primary_and_a_lagging_backup_restart():
    """n = 4, r3 Byzantine for one message. b2 commits at r0 only; view 1's O = {2: b2}
    is held back at r2 (it lacks b1); r1 and r2 restart; r3 prepares r1's other block."""
    import hashlib
    from consensus.events import Adopted
    net = Net(4, block_size=1)
    net.cut = {"r2"}
    net.submit("r0")
    net.deliver_all()
    b1 = net.executed["r1"][0]
    net.drop_if = lambda dst, env: type(env.message) is Commit and dst != "r0"
    net.submit("r0")
    net.deliver_all()
    assert net.heights() == {"r0": 2, "r1": 1, "r2": 0, "r3": 1}
    b2 = net.chain("r0")[1]
    net.cut = {"r0"}
    net.drop_if = lambda dst, env: type(env.message) in (Prepare, Commit) and env.message.view == 1
    net.fire("r1", "view-change")
    net.fire("r3", "view-change")
    net.deliver_all()
    assert 2 in net.replicas["r2"].deferred
    net.restart("r2")
    net.restart("r1")
    net.submit("r1")
    net.deliver_all()
    others = {env.message.digest for src, env in net.sent if src == "r1" and type(env.message) is PrePrepare
              and (env.message.view, env.message.seq) == (1, 2)} - {b2}
    assert not others, "the restarted primary proposed another block where its NEW-VIEW put b2"
    a = net.replicas["r2"]
    net.executed["r2"].append(b1)
    net.step("r2", Adopted(net.now, b1.block, b1.certificate,
                           hashlib.sha256((a.state_root + b1.block.hash).encode()).hexdigest()))
    net.deliver_all()
    net.drop_if = None
    for name in ("r1", "r2", "r3"):
        if "view-change" in net.timers[name]:
            net.fire(name, "view-change")
    net.deliver_all()
    at2 = {r: net.chain(r)[1] for r in ("r0", "r1", "r2") if len(net.chain(r)) > 1}
    assert set(at2.values()) <= {b2}, f"fork at height 2: {at2}"
