"""View changes, checked against Castro & Liskov, OSDI'99, sections 4.4 and 4.5.2."""

from consensus.effects import Broadcast, Forward, Send
from consensus.events import Receive
from consensus.messages import (Checkpoint, Commit, NewView, NewViewRequest, PrePrepare, Prepare, PreparedProof,
                                ViewChange)

from .harness import Net


def messages(net, kind):
    return [env for _, env in net.sent if type(env.message) is kind]


def crash_primary_with_pending(net, count=1):
    """r0 (primary of view 0) is cut off; a client sends to every backup (section 4.1)."""
    net.cut = {"r0"}
    envs = [net.request() for _ in range(count)]
    for name in net.names[1:]:
        for env in envs:
            net.step(name, Receive(0, env))
    net.deliver_all()
    return envs


def test_backups_time_out_change_view_and_the_new_primary_orders_the_request_sec_4_4():
    net = Net(4, block_size=1)
    crash_primary_with_pending(net)
    assert all("view-change" in net.timers[r] for r in ("r1", "r2", "r3"))
    net.fire_all("view-change")
    net.deliver_all()
    # r1 = primary of view 1 (1 mod 4) sent NEW-VIEW; everyone is in view 1.
    assert [env.signer for env in messages(net, NewView)] == ["r1"]
    for name in ("r1", "r2", "r3"):
        assert net.replicas[name].view == 1 and net.replicas[name].active
    net.fire_all("batch")
    net.deliver_all()
    assert [net.heights()[r] for r in ("r1", "r2", "r3")] == [1, 1, 1]


def test_view_change_carries_prepared_proofs_and_new_view_keeps_the_digest_sec_4_4():
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: type(env.message) is Commit  # everyone prepares, nobody commits
    [env] = net.submit("r0")
    net.deliver_all()
    prepared = net.replicas["r1"].log[1]
    assert prepared.prepared and not prepared.committed
    digest = prepared.digest
    net.drop_if = None
    net.cut = {"r0"}
    net.fire_all("view-change")
    vcs = messages(net, ViewChange)
    assert {v.signer for v in vcs} == {"r1", "r2", "r3"}
    for vc in vcs:
        [proof] = vc.message.prepared
        assert proof.pre_prepare.message.digest == digest and proof.pre_prepare.signer == "r0"
        assert len({p.signer for p in proof.prepares}) >= 2  # 2f matching prepares
    net.deliver_all()
    [nv] = messages(net, NewView)
    assert [(p.message.seq, p.message.digest, p.message.view) for p in nv.message.pre_prepares] == [(1, digest, 1)]
    assert all(net.chain(r) == [digest] for r in ("r1", "r2", "r3"))


def test_a_committed_block_survives_the_view_change_sec_4_4():
    net = Net(7, block_size=1)
    # r1 commits block 1; everyone else saw only the prepares: then the primary dies.
    net.drop_if = lambda dst, env: type(env.message) is Commit and dst != "r1"
    net.submit("r0")
    net.deliver_all()
    assert net.heights()["r1"] == 1
    committed = net.chain("r1")
    net.drop_if = None
    net.cut = {"r0"}
    for name in net.names[1:]:
        net.step(name, Receive(0, net.request()))
    net.deliver_all()
    net.fire_all("view-change")
    net.deliver_all()
    assert all(net.chain(r)[:1] == committed for r in net.names[1:])


def test_f_plus_1_view_changes_pull_a_replica_into_the_view_sec_4_5_2():
    net = Net(7)  # f = 2
    vcs = [net.sign(name, ViewChange(1, 0, (), ())) for name in ("r1", "r2", "r3")]
    net.step("r4", Receive(0, vcs[0]))
    net.step("r4", Receive(0, vcs[1]))
    assert net.replicas["r4"].view == 0  # f view changes might all be faulty
    net.step("r4", Receive(0, vcs[2]))
    assert net.replicas["r4"].view == 1 and not net.replicas["r4"].active
    assert [env.signer for env in messages(net, ViewChange)] == ["r4"]


def test_the_timer_doubles_for_each_view_change_that_fails_sec_4_5_2():
    """The NEW-VIEW timer starts once a quorum of VIEW-CHANGEs for the view arrived, and
    waits T, then 2T, 4T... for views whose NEW-VIEW never comes."""
    net = Net(4)
    crash_primary_with_pending(net)
    base = net.timers["r2"]["view-change"]  # the request timer
    net.drop_if = lambda dst, env: type(env.message) is NewView  # no new primary gets through
    for view, factor in ((1, 1), (2, 2), (3, 4)):
        net.fire_all("view-change")
        net.deliver_all()
        waiting = [r for r in ("r1", "r2", "r3") if r != f"r{view}"]  # (the new primary installed itself)
        assert {(net.replicas[r].view, net.replicas[r].active) for r in waiting} == {(view, False)}
        assert {net.timers[r]["view-change"] for r in waiting} == {factor * base}


def test_a_view_change_with_a_thin_proof_is_refused_sec_4_4():
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: type(env.message) is Commit
    net.submit("r0")
    net.deliver_all()
    pre = next(env for _, env in net.sent if type(env.message) is PrePrepare)
    one_prepare = next(env for _, env in net.sent if type(env.message) is Prepare)
    thin = net.sign("r2", ViewChange(1, 0, (), (PreparedProof(pre, (one_prepare,)),)))
    net.step("r3", Receive(0, thin))
    assert net.drops["r3"][-1] == "bad-view-change-prepared"
    fake_checkpoint = net.sign("r2", Checkpoint(10, "ab" * 32, "cd" * 32))
    bad = net.sign("r2", ViewChange(1, 10, (fake_checkpoint,), ()))
    net.step("r3", Receive(0, bad))
    assert net.drops["r3"][-1] == "bad-view-change-checkpoint"


def test_new_view_only_from_the_new_primary_and_only_with_the_right_o_sec_4_4():
    net = Net(4)
    vcs = tuple(net.sign(name, ViewChange(1, 0, (), ())) for name in ("r1", "r2", "r3"))
    rogue = net.sign("r2", NewView(1, vcs, ()))
    net.step("r3", Receive(0, rogue))
    assert net.drops["r3"][-1] == "new-view-not-from-primary"
    too_few = net.sign("r1", NewView(1, vcs[:2], ()))
    net.step("r3", Receive(0, too_few))
    assert net.drops["r3"][-1] == "bad-new-view"
    good = net.sign("r1", NewView(1, vcs, ()))
    net.step("r3", Receive(0, good))
    assert net.replicas["r3"].view == 1 and net.replicas["r3"].active


def test_a_replica_that_missed_the_prepares_learns_the_block_from_a_commit_certificate():
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: dst == "r3" and type(env.message) is Prepare
    net.submit("r0")
    net.deliver_all()
    assert net.heights() == {"r0": 1, "r1": 1, "r2": 1, "r3": 1}
    assert not net.replicas["r3"].log[1].prepared  # it never prepared, yet executed


def test_a_replica_missing_the_block_asks_to_catch_up():
    net = Net(4, block_size=1)
    net.drop_if = lambda dst, env: dst == "r3" and type(env.message) is PrePrepare
    net.submit("r0")
    net.deliver_all()
    assert net.heights()["r3"] == 0
    net.fire("r3", "fetch")
    [catch_up] = net.catch_ups["r3"]
    assert catch_up.target == 1 and set(catch_up.peers) == {"r0", "r1", "r2"}


def test_f_plus_1_replicas_working_in_a_higher_view_make_a_replica_ask_for_its_new_view():
    """Beyond the paper: evidence brings a replica to ask for the NEW-VIEW, and only the
    NEW-VIEW brings it into the view (it must learn O; section 4.4)."""
    net = Net(7)
    digest = "ab" * 32
    for name in ("r2", "r4"):  # (r3 is the primary of view 3: it sends no prepares)
        net.step("r6", Receive(0, net.sign(name, Prepare(3, 1, digest))))
    assert not [e for e in net.effects["r6"] if type(e) is Send]
    net.step("r6", Receive(0, net.sign("r5", Prepare(3, 1, digest))))
    asks = [e for e in net.effects["r6"] if type(e) is Send]
    assert sorted(e.to for e in asks) == ["r2", "r4", "r5"]
    assert {type(e.message) for e in asks} == {NewViewRequest} and {e.message.view for e in asks} == {3}
    assert net.replicas["r6"].view == 0  # evidence alone is not enough
    vcs = tuple(net.sign(name, ViewChange(3, 0, (), ())) for name in ("r0", "r1", "r2", "r3", "r4"))
    net.step("r6", Receive(0, net.sign("r3", NewView(3, vcs, ()))))
    assert net.replicas["r6"].view == 3 and net.replicas["r6"].active


def test_a_replica_serves_the_new_view_that_installed_its_view():
    net = Net(4)
    vcs = tuple(net.sign(name, ViewChange(1, 0, (), ())) for name in ("r1", "r2", "r3"))
    new_view = net.sign("r1", NewView(1, vcs, ()))
    net.step("r2", Receive(0, new_view))
    net.step("r2", Receive(0, net.sign("r3", NewViewRequest(1))))
    assert any(type(e) is Forward and e.to == "r3" and e.envelope is new_view for e in net.effects["r2"])
    net.step("r2", Receive(0, net.sign("r3", NewViewRequest(2))))
    assert net.drops["r2"][-1] == "no-new-view-to-serve"


def test_a_pre_prepare_of_a_view_entered_by_evidence_is_not_accepted_without_the_new_view():
    """Bug 1 of the safety review at replica level: r3 sees r0 and r1 work in view 1 and
    gets a pre-prepare from r1 for sequence 1; without the NEW-VIEW it must not prepare."""
    net = Net(4, block_size=1)
    [request] = [net.request()]
    block = _block(net, request, view=1, proposer="r1")
    net.step("r3", Receive(0, net.sign("r1", PrePrepare(1, 1, block.hash, block))))
    net.step("r3", Receive(0, net.sign("r0", Prepare(1, 1, "cd" * 32))))
    assert net.replicas["r3"].view == 0
    assert not [e for e in net.effects["r3"] if type(e) is Broadcast and type(e.message) is Prepare]


def _block(net, request, view, proposer):
    from consensus.block import Block, BlockHeader, tx_root
    header = BlockHeader(chain_id="test", height=1, prev_hash="00" * 32, tx_root=tx_root((request,)),
                         state_root="11" * 32, view=view, proposer=proposer, timestamp=5)
    return Block(header, (request,), header.compute_hash())
