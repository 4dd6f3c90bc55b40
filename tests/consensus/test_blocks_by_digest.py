"""Blocks by digest (docs/messages.md): a VIEW-CHANGE and a NEW-VIEW name each block by
its digest; a replica that must take up a re-issued pre-prepare whose block it lacks
fetches it (BLOCK-REQUEST / BLOCK-REPLY) and prepares only once it holds it.

Each test scripts one interleaving that could break the fetch (issue 12, known gap 2)."""

from dataclasses import replace

from consensus.block import Block
from consensus.effects import Broadcast, Send
from consensus.events import Receive, TimerFired
from consensus.messages import BlockReply, BlockRequest, Commit, NewView, PrePrepare, Prepare, ViewChange
from consensus.replica import BLOCK_TIMER

from .harness import Net


def prepared_but_not_committed(net: Net, lacking: str) -> str:
    """r0 proposes block 1; ``lacking`` never gets the PRE-PREPARE; every COMMIT is lost.
    The other two backups prepare it. Then r0 is cut off. Returns the block's digest."""
    net.drop_if = lambda dst, env: type(env.message) is Commit or (
        type(env.message) is PrePrepare and dst == lacking)
    net.submit("r0")
    net.deliver_all()
    net.drop_if = None
    net.cut = {"r0"}
    holders = [r for r in ("r1", "r2", "r3") if r != lacking]
    digest = net.replicas[holders[0]].log[1].digest
    assert all(net.replicas[r].log[1].prepared for r in holders)
    assert net.replicas[lacking].held_block(1, digest) is None
    return digest


def change_view(net: Net, to: int = 1) -> None:
    for name in ("r1", "r2", "r3"):
        net.step(name, TimerFired(net.now, "view-change"))


def sent_by(net: Net, name: str, kind) -> list:
    return [e.message for e in net.effects[name] if type(e) in (Send, Broadcast) and type(e.message) is kind]


def test_the_new_view_names_blocks_by_digest_and_a_backup_missing_one_fetches_it_before_preparing():
    net = Net(4, block_size=1)
    digest = prepared_but_not_committed(net, lacking="r3")  # r1, the new primary, holds it
    net.drop_if = lambda dst, env: type(env.message) is BlockReply  # the first answer is lost
    change_view(net)
    net.deliver_all()
    [nv] = [env for _, env in net.sent if type(env.message) is NewView]
    assert [(p.message.seq, p.message.digest, p.message.block) for p in nv.message.pre_prepares] == [(1, digest, None)]
    assert all(p.pre_prepare.message.block is None for _, env in net.sent if type(env.message) is ViewChange
               for p in env.message.prepared)
    r3 = net.replicas["r3"]
    assert r3.view == 1 and r3.active
    assert sent_by(net, "r3", BlockRequest) == [BlockRequest(1, digest)]
    assert [e.to for e in net.effects["r3"] if type(e) is Send and type(e.message) is BlockRequest] == ["r1"]
    # Without the block, no PREPARE in view 1 from r3.
    assert not [m for m in sent_by(net, "r3", Prepare) if m.view == 1]
    assert BLOCK_TIMER in net.timers["r3"]
    net.drop_if = None
    net.fire("r3", BLOCK_TIMER)  # asks the next holder
    assert [e.to for e in net.effects["r3"] if type(e) is Send and type(e.message) is BlockRequest] == ["r1", "r2"]
    net.deliver_all()
    assert Prepare(1, 1, digest) in sent_by(net, "r3", Prepare)
    assert all(net.chain(r) == [digest] for r in ("r1", "r2", "r3"))
    assert not r3.fetching and BLOCK_TIMER not in net.timers["r3"]


def test_the_new_primary_lacking_the_block_fetches_it_too():
    net = Net(4, block_size=1)
    digest = prepared_but_not_committed(net, lacking="r1")  # r1 is the primary of view 1
    change_view(net)
    net.deliver_all()
    assert sent_by(net, "r1", BlockRequest) == [BlockRequest(1, digest)]
    assert all(net.chain(r) == [digest] for r in ("r1", "r2", "r3"))


def test_a_new_primary_sends_its_new_view_only_once_it_holds_every_block_o_re_issues():
    """r1, primary of view 1, lacks block 1, which r2 and r3 prepared; r0 is cut off. Its
    quorum is r1, r2, r3, and both others' VIEW-CHANGEs name block 1: it fetches the block
    before it builds the NEW-VIEW, so every block its O names is one it holds and serves
    (a faulty claimant withholding its block cannot make O name a block no honest
    replica holds: tests/consensus/test_blocks_by_digest_review.py)."""
    net = Net(4, block_size=1)
    digest = prepared_but_not_committed(net, lacking="r1")
    net.drop_if = lambda dst, env: type(env.message) is BlockReply
    change_view(net)
    net.deliver_all()
    assert BlockRequest(1, digest) in sent_by(net, "r1", BlockRequest)
    assert not sent_by(net, "r1", NewView)  # not while it lacks the block
    net.drop_if = None
    net.fire("r1", BLOCK_TIMER)  # asks the next holder; this answer arrives
    net.deliver_all()
    [new_view] = sent_by(net, "r1", NewView)  # as the replica built it: O unsigned
    assert [(p.seq, p.digest) for p in new_view.pre_prepares] == [(1, digest)]
    assert net.replicas["r1"].held_block(1, digest) is not None
    assert all(net.chain(r) == [digest] for r in ("r1", "r2", "r3"))


def test_a_byzantine_holder_answering_with_another_block_is_not_believed():
    net = Net(4, block_size=1)
    digest = prepared_but_not_committed(net, lacking="r3")
    real = net.replicas["r1"].held_block(1, digest)
    header = replace(real.header, timestamp=real.header.timestamp + 1)
    forged = Block(header, real.requests, header.compute_hash())  # same height, another hash
    # r1 (asked first) answers r3 with its own block instead.
    net.drop_if = lambda dst, env: type(env.message) is BlockReply and env.signer == "r1" and dst == "r3"
    change_view(net)
    net.deliver_all()
    net.step("r3", Receive(net.now, net.sign("r1", BlockReply(forged.hash, forged))))
    assert "unrequested-block" in net.drops["r3"]
    assert not [m for m in sent_by(net, "r3", Prepare) if m.view == 1]
    net.fire("r3", BLOCK_TIMER)  # the next holder, r2, answers truthfully
    net.deliver_all()
    assert all(net.chain(r) == [digest] for r in ("r1", "r2", "r3"))


def test_a_holder_that_crashed_after_preparing_serves_the_block_after_its_restart():
    net = Net(4, block_size=1)
    digest = prepared_but_not_committed(net, lacking="r1")  # r2 and r3 hold it; r1 will ask r2 first
    change_view(net)  # r2's VIEW-CHANGE leaves; then r2 crashes and restarts
    net.restart("r2")
    assert net.replicas["r2"].held_block(1, digest) is not None  # its prepared certificate kept the block
    net.drop_if = lambda dst, env: type(env.message) is BlockReply and env.signer == "r3"  # only r2 can serve
    net.deliver_all()
    replies = [e for e in net.effects["r2"] if type(e) is Send and type(e.message) is BlockReply]
    assert [(e.to, e.message.digest) for e in replies] == [("r1", digest)]
    assert all(net.chain(r) == [digest] for r in ("r1", "r2", "r3"))


def test_a_replica_restarting_while_it_fetches_asks_again_from_its_durable_new_view():
    net = Net(4, block_size=1)
    digest = prepared_but_not_committed(net, lacking="r3")
    net.drop_if = lambda dst, env: type(env.message) is BlockReply  # every answer lost
    change_view(net)
    net.deliver_all()
    assert net.replicas["r3"].fetching
    net.restart("r3")
    assert net.replicas["r3"].view == 1 and net.replicas["r3"].active
    assert sent_by(net, "r3", BlockRequest).count(BlockRequest(1, digest)) == 2  # once before, once after
    net.drop_if = None
    net.fire("r3", BLOCK_TIMER)
    net.deliver_all()
    # r2's PREPARE of view 1 reached r3 before its restart and died with it: the stalled
    # slot's votes are sent again (the fetch timer's retransmission), as for any lost vote.
    for _ in range(2):
        net.fire_all("fetch")
        net.deliver_all()
    assert all(net.chain(r) == [digest] for r in ("r1", "r2", "r3"))


def test_a_block_answer_arriving_after_a_further_view_change_is_kept_for_that_view():
    net = Net(4, block_size=1)
    digest = prepared_but_not_committed(net, lacking="r3")
    held: list = []
    net.drop_if = lambda dst, env: type(env.message) is BlockReply and (held.append((dst, env)) or True)
    change_view(net)
    net.deliver_all()
    assert [env.message.digest for _, env in held] == [digest]
    # View 1 makes no progress (r3 could not prepare): everyone moves on to view 2.
    net.drop_if = None
    change_view(net)
    assert not net.replicas["r3"].active
    asked = len(sent_by(net, "r3", BlockRequest))
    for dst, env in held:  # the answer to view 1's fetch arrives now
        net.step(dst, Receive(net.now, env))
    assert "unrequested-block" not in net.drops["r3"]
    net.deliver_all()
    nvs = [env for _, env in net.sent if type(env.message) is NewView]
    assert [nv.message.view for nv in nvs] == [1, 2]
    assert [(p.message.seq, p.message.digest) for p in nvs[-1].message.pre_prepares] == [(1, digest)]
    assert len(sent_by(net, "r3", BlockRequest)) == asked  # held already: not fetched again
    assert all(net.chain(r) == [digest] for r in ("r1", "r2", "r3"))


def test_an_unasked_block_reply_is_dropped_and_a_block_is_served_once_per_period():
    net = Net(4, block_size=1)
    digest = prepared_but_not_committed(net, lacking="r3")
    block = net.replicas["r1"].held_block(1, digest)
    net.step("r2", Receive(net.now, net.sign("r1", BlockReply(digest, block))))
    assert net.drops["r2"] == ["unrequested-block"]
    ask = net.sign("r3", BlockRequest(1, digest))
    net.step("r1", Receive(net.now, ask))
    net.step("r1", Receive(net.now, ask))
    assert net.drops["r1"][-1] == "block-already-served"
    net.step("r3", Receive(net.now, net.sign("r1", BlockRequest(1, "ab" * 32))))
    assert net.drops["r3"][-1] == "no-block-to-serve"
