"""Issue 12, replays: an old, validly signed message replayed many times costs a bounded
answer per sender per view, and a faulty replica cannot make a slot hold unbounded
digests (docs/messages.md, "Admission and bounds")."""

from consensus.effects import Forward, Send
from consensus.events import Receive
from consensus.messages import Checkpoint, Commit, NewView, NewViewRequest, PrePrepare, Prepare, ViewChange
from consensus.replica import NEW_VIEWS_KEPT

from .harness import Net

T = 500_000_000  # the harness's view-change timeout (the default)
MS = 1_000_000


def answers(net, name, to):
    return [e for e in net.effects[name] if type(e) in (Forward, Send) and e.to == to]


def installed_view_1(net):
    vcs = tuple(net.sign(name, ViewChange(1, 0, (), ())) for name in ("r1", "r2", "r3"))
    new_view = net.sign("r1", NewView(1, vcs, ()))
    net.step("r2", Receive(0, new_view))
    assert net.replicas["r2"].installed_view == 1 and net.replicas["r2"].active
    return vcs, new_view


def test_a_replayed_stale_view_change_is_answered_once_per_timeout():
    """r2 works in view 1; r3's old VIEW-CHANGE for view 1, replayed 10,000 times over
    2 s, gets r2's NEW-VIEW once per T: 4 answers (at 0, 0.5, 1 and 1.5 s), not 10,000."""
    net = Net(4)
    vcs, new_view = installed_view_1(net)
    old = vcs[2]  # r3's VIEW-CHANGE for view 1
    for i in range(10_000):
        net.step("r2", Receive(i * 200_000, old))
    sent = answers(net, "r2", "r3")
    assert len(sent) == 4 and all(e.envelope is new_view for e in sent)
    assert net.drops["r2"].count("stale-view-change") == 10_000 - 4


def test_a_replayed_view_change_for_the_view_being_changed_to_is_refused_before_its_proofs_are_checked():
    net = Net(4)
    vc = net.sign("r3", ViewChange(1, 0, (), ()))
    net.step("r2", Receive(0, net.sign("r2", ViewChange(1, 0, (), ()))))
    net.step("r2", Receive(0, vc))
    checked = []
    replica = net.replicas["r2"]
    original = replica._invalid_view_change
    replica._invalid_view_change = lambda m: checked.append(m) or original(m)
    for i in range(1000):
        net.step("r2", Receive(i, vc))
    assert checked == [] and net.drops["r2"][-1000:] == ["duplicate"] * 1000
    assert not [e for e in net.effects["r2"] if type(e) in (Forward, Send)]


def test_a_repeated_new_view_request_is_served_once_per_timeout_per_view():
    """A NEW-VIEW is large: the request path must not be a loop that sends it on demand
    (a broker run saw 218 NEW-VIEWs, 9.8 MB, in 24 s)."""
    net = Net(4)
    _vcs, new_view = installed_view_1(net)
    request = net.sign("r3", NewViewRequest(1))
    for i in range(5000):
        net.step("r2", Receive(i * MS // 2, request))  # 2.5 s of requests, 2,000 a second
    sent = answers(net, "r2", "r3")
    assert len(sent) == 5 and all(e.envelope is new_view for e in sent)  # at 0, 0.5, 1, 1.5, 2 s
    assert net.drops["r2"].count("new-view-already-served") == 5000 - 5
    # Another replica is served on its own account.
    net.step("r2", Receive(0, net.sign("r0", NewViewRequest(1))))
    assert len(answers(net, "r2", "r0")) == 1
    # What it remembers is bounded by replicas x NEW-VIEWs kept.
    assert len(net.replicas["r2"].served) <= 4 * NEW_VIEWS_KEPT


def test_a_faulty_replica_cannot_fill_a_slot_with_digests():
    """One PREPARE and one COMMIT per signer per sequence and view, one CHECKPOINT per
    signer per sequence: a flood of other digests is refused as conflicting."""
    net = Net(4)
    r = net.replicas["r2"]
    for i in range(500):
        digest = f"{i:064x}"
        net.step("r2", Receive(0, net.sign("r3", Prepare(0, 1, digest))))
        net.step("r2", Receive(0, net.sign("r3", Commit(0, 1, digest))))
        net.step("r2", Receive(0, net.sign("r3", Checkpoint(10, digest, digest))))
    slot = r.log[1]
    assert len(slot.prepares) == 1 and len(slot.commits) == 1 and len(r.checkpoints[10]) == 1
    assert net.drops["r2"].count("conflicting-vote") == 3 * 499
    # Honest votes for the real digest still count.
    for name in ("r0", "r1"):
        net.step("r2", Receive(0, net.sign(name, Commit(0, 1, "ff" * 32))))
    assert len(slot.commits) == 2


def test_only_the_primary_of_a_future_view_can_fill_its_held_pre_prepares():
    net = Net(4, block_size=1)
    req = net.request()
    from consensus.block import Block, BlockHeader, tx_root
    header = BlockHeader(chain_id="test", height=1, prev_hash="00" * 32, tx_root=tx_root((req,)),
                         state_root="11" * 32, view=2, proposer="r3", timestamp=1)
    block = Block(header, (req,), header.compute_hash())
    net.step("r1", Receive(0, net.sign("r3", PrePrepare(2, 1, block.hash, block))))  # r3 is not primary of view 2
    assert net.drops["r1"][-1] == "pre-prepare-not-from-primary" and not net.replicas["r1"].future


def test_a_replayed_view_change_or_new_view_is_known_as_a_replay_before_its_contents_are_checked():
    """The node skips authenticating what a replay carries (node/node.py): the replica
    says which VIEW-CHANGEs and NEW-VIEWs it will refuse or answer without reading them."""
    net = Net(4)
    vcs, new_view = installed_view_1(net)
    r = net.replicas["r2"]
    assert r.is_replay(new_view)  # the NEW-VIEW that installed its view
    assert r.is_replay(vcs[2])  # a VIEW-CHANGE for the view it works in: answered from its own state
    fresh = net.sign("r3", ViewChange(2, 0, (), ()))
    assert not r.is_replay(fresh)
    net.step("r2", Receive(0, fresh))
    assert r.is_replay(fresh)  # held now: a second copy is a duplicate
    assert not r.is_replay(net.sign("r2", NewView(2, (), ())))  # a NEW-VIEW for a view ahead is read in full


def test_a_new_view_goes_to_a_replica_once_per_timeout_whichever_path_asks():
    net = Net(4)
    vcs, new_view = installed_view_1(net)
    net.step("r2", Receive(0, vcs[2]))  # r3's stale VIEW-CHANGE: answered with the NEW-VIEW
    net.step("r2", Receive(MS, net.sign("r3", NewViewRequest(1))))  # and asked again at once
    assert len(answers(net, "r2", "r3")) == 1 and net.drops["r2"][-1] == "new-view-already-served"
    net.step("r2", Receive(T + MS, net.sign("r3", NewViewRequest(1))))  # after T: served again
    assert len(answers(net, "r2", "r3")) == 2
