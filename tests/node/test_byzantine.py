"""Each Byzantine wrapper in isolation: what it does to an honest replica's effects."""

import random


from consensus.effects import Broadcast, Forward, Send, StartTimer
from consensus.events import Receive, TimerFired
from consensus.messages import Checkpoint, Commit, PrePrepare, Prepare
from node import byzantine as b
from node.identity import derive_key
from node.membership import Membership
from tests.consensus.harness import CHAIN, Net


def wrapped(behaviour, me="r0", n=4, colluders=frozenset(), groups=((), ())):
    net = Net(n, block_size=1)
    signer = net.signers[me]
    ctx = b.Context(me, net.names, signer, random.Random(1), colluders, 50, groups)
    replica = b.wrap(behaviour, net.replicas[me], ctx)
    return net, replica


def propose(net, replica):
    """Give the (primary) replica a request and return what it wants to do."""
    return replica.step(Receive(0, net.request()))


def sends(effects):
    return [e for e in effects if type(e) in (Broadcast, Send, Forward)]


def test_silent_sends_nothing():
    net, replica = wrapped("silent")
    assert sends(propose(net, replica)) == []
    assert replica.last_proposed == 1  # inside, the honest replica did propose


def test_silent_primary_votes_but_never_proposes():
    net, replica = wrapped("silent-primary")
    assert sends(propose(net, replica)) == []
    net, backup = wrapped("silent-primary", me="r1")
    pre = net.sign("r0", PrePrepare(0, 1, *_block(net)))
    assert [type(e.message) for e in sends(backup.step(Receive(0, pre)))] == [Prepare]


def _block(net):
    from consensus.block import Block, BlockHeader, tx_root
    from tests.consensus.harness import GENESIS, ROOT0
    env = net.request()
    header = BlockHeader(CHAIN, 1, GENESIS, tx_root((env,)), ROOT0, 0, "r0", 1)
    block = Block.create(header, (env,))
    return block.hash, block


def test_equivocate_sends_two_blocks_for_one_sequence():
    net, replica = wrapped("equivocate")
    out = sends(propose(net, replica))
    digests = {}
    for e in out:
        assert type(e) is Send and type(e.message) is PrePrepare and e.message.seq == 1
        digests.setdefault(e.message.digest, set()).add(e.to)
    assert len(digests) == 2
    to_peers = [peers - {"r0"} for peers in digests.values()]
    assert sorted(map(sorted, to_peers)) == [["r1", "r3"], ["r2"]]


def test_conflicting_votes_vote_for_two_digests():
    net, replica = wrapped("conflicting-votes", me="r1")
    pre = net.sign("r0", PrePrepare(0, 1, *_block(net)))
    votes = [e for e in sends(replica.step(Receive(0, pre))) if type(e.message) is Prepare]
    assert len({e.message.digest for e in votes}) == 2
    assert {e.to for e in votes} == {"r0", "r1", "r2", "r3"}


def test_forged_signatures_are_refused_by_every_receiver():
    net, replica = wrapped("forge-signatures")
    out = sends(propose(net, replica))
    assert out and all(type(e) is Forward for e in out)
    keys = {name: (derive_key(0, CHAIN, name).public_key(), "org", "consensus") for name in net.names}
    keys["client"] = (derive_key(0, CHAIN, "client").public_key(), "org", "client")
    membership = Membership(CHAIN, keys)
    reasons = {membership.authenticate(e.envelope) for e in out}
    assert reasons <= {"bad-signature", "body-mismatch"} and None not in reasons


def test_replay_resends_old_messages():
    net, replica = wrapped("replay", me="r1")
    old = net.sign("r2", Prepare(0, 1, "ab" * 32))
    replica.step(Receive(0, old))
    pre = net.sign("r0", PrePrepare(0, 1, *_block(net)))
    out = replica.step(Receive(0, pre))
    assert [e.envelope for e in out if type(e) is Forward] == [old, old, old]


def test_delay_holds_messages_until_its_timer():
    net, replica = wrapped("delay")
    out = propose(net, replica)
    assert sends(out) == []
    [timer] = [e for e in out if type(e) is StartTimer and e.name == b.Delay.TIMER]
    assert timer.delay == 50
    released = replica.step(TimerFired(60, b.Delay.TIMER))
    assert [type(e.message) for e in sends(released)] == [PrePrepare]


def test_lying_checkpoints_claim_another_state():
    net, replica = wrapped("lying-checkpoints")
    lie = replica.rewrite([Broadcast(Checkpoint(10, "ab" * 32, "cd" * 32))])
    to_peers = {e.message.state_root for e in lie if e.to != "r0"}
    assert to_peers and "cd" * 32 not in to_peers
    assert [e.message.state_root for e in lie if e.to == "r0"] == ["cd" * 32]


def test_fork_shows_each_honest_half_its_own_block():
    groups = (("r2",), ("r3",))
    net, replica = wrapped("fork", colluders=frozenset({"r0", "r1"}), groups=groups)
    out = sends(propose(net, replica))
    pre_by_dst = {e.to: e.message.digest for e in out if type(e.message) is PrePrepare and e.to != "r0"}
    assert pre_by_dst["r2"] != pre_by_dst["r3"]
    commits = {e.to: e.message.digest for e in out if type(e.message) is Commit}
    assert commits == {"r2": pre_by_dst["r2"], "r3": pre_by_dst["r3"]}


def test_every_behaviour_is_listed_in_the_scenario_schema():
    from citychain.scenario import BEHAVIOURS
    assert set(BEHAVIOURS) == set(b.BEHAVIOURS)


def test_the_delivery_fast_path_goes_through_the_wrapper():
    net, replica = wrapped("silent", me="r1")
    pre = net.sign("r0", PrePrepare(0, 1, *_block(net)))
    assert sends(replica.deliver(pre, 0)) == []  # the honest replica inside would have prepared
    assert replica.inner.log[1].pre_prepare is pre


# ---- the behaviours the safety review asked for ---------------------------------------


def targeted(behaviour, me, targets, kinds=None):
    net = Net(4, block_size=1)
    ctx = b.Context(me, net.names, net.signers[me], random.Random(1), targets=targets,
                    kinds=None if kinds is None else frozenset(kinds))
    return net, b.wrap(behaviour, net.replicas[me], ctx)


def test_selective_sends_the_chosen_kinds_only_to_its_targets():
    net, replica = targeted("selective", "r0", ("r2",), kinds=("pre-prepare",))
    out = sends(propose(net, replica))
    assert {(type(e), e.to) for e in out if type(e.message) is PrePrepare} == {(Send, "r0"), (Send, "r2")}


def _new_view_with_one_block(net):
    from consensus.messages import NewView, ViewChange
    replica = net.replicas["r0"]
    [pp] = [e.message for e in replica.step(Receive(0, net.request())) if type(e) is Broadcast
            and type(e.message) is PrePrepare]
    # O names the block by digest: the new primary r1 makes its variant of a block it holds.
    net.replicas["r1"].step(Receive(0, net.sign("r0", pp)))
    vcs = tuple(net.sign(r, ViewChange(1, 0, (), ())) for r in ("r1", "r2", "r3"))
    return NewView(1, vcs, (PrePrepare(1, pp.seq, pp.digest, pp.block),))


def test_split_new_view_tells_its_targets_the_new_view_and_the_rest_its_own_block():
    net, replica = targeted("split-new-view", "r1", ("r0",))
    nv = _new_view_with_one_block(net)
    out = replica.rewrite([Broadcast(nv)])
    assert {e.to for e in out if e.message is nv} == {"r0", "r1"}
    lies = [e for e in out if e.message is not nv]
    assert {e.to for e in lies} == {"r2", "r3"}
    [digest] = {e.message.digest for e in lies}
    assert digest != nv.pre_prepares[0].digest
    assert {type(e.message) for e in lies} == {PrePrepare, Commit}
    assert all(e.message.block.header.proposer == "r1" for e in lies if type(e.message) is PrePrepare)


def test_two_new_views_builds_a_second_valid_new_view_from_another_quorum():
    from consensus.messages import NewView, ViewChange
    net, replica = targeted("two-new-views", "r1", ("r0",))
    vcs = {r: net.sign(r, ViewChange(1, 0, (), ())) for r in net.names}
    replica.inner.view_changes[1] = dict(vcs)
    first = NewView(1, tuple(vcs[r] for r in ("r1", "r2", "r3")), ())
    out = replica.rewrite([Broadcast(first)])
    [second] = {id(e.message): e.message for e in out if e.message is not first}.values()
    assert {e.to for e in out if e.message is second} == {"r2", "r3"}
    assert {v.signer for v in second.view_changes} != {v.signer for v in first.view_changes}
    assert len(second.view_changes) == 3


def test_forged_view_change_drops_its_prepared_certificates_and_stable_point():
    from consensus.messages import ViewChange
    net, replica = targeted("forged-view-change", "r2", None)
    honest = ViewChange(3, 0, (), ())
    [out] = replica.rewrite([Broadcast(honest)])
    assert out.message == ViewChange(3, 0, (), ())


def test_a_node_catches_up_past_peers_that_lie_in_state_transfer(taihu_path):
    """A crashed node restarts and fetches what it missed; one peer withholds, answers
    empty, stale, or with blocks of its own: the node believes none of it and catches up."""
    from citychain.scenario import load_scenario
    from citychain.sim.run import simulate
    from citychain.summary import summarize
    for behaviour in ("withhold-blocks", "empty-blocks", "stale-blocks", "wrong-blocks"):
        spec = load_scenario(taihu_path).with_overrides(nodes=4)
        data = spec.model_dump()
        data.update(byzantine=[{"node": "node-3", "behaviour": behaviour}],
                    faults=[{"at_ms": 50, "crash": "node-1"}, {"at_ms": 900, "recover": "node-1"}],
                    workload={**data["workload"], "transactions": 300, "rate_tps": 300})
        s = summarize(simulate(type(spec).model_validate(data)), behaviour)
        assert s["safety_violations"] == 0 and s["agreement"], behaviour
        assert s["liveness"]["ok"] and s["committed_tx"] == 300, (behaviour, s["liveness"])
        assert s["node_status"]["node-01"]["caught_up"], behaviour
