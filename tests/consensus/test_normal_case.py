"""PBFT normal-case operation, checked against Castro & Liskov, OSDI'99, section 4."""

import pytest

from consensus.block import Block, BlockHeader, tx_root
from consensus.events import Receive
from consensus.messages import Commit, PrePrepare, Prepare
from consensus.quorum import max_faulty, quorum

from .harness import GENESIS, ROOT0, Net


def kinds(net, kind):
    return [env for _, env in net.sent if type(env.message) is kind]


def test_one_block_through_three_phases_sec_4_2():
    net = Net(4, block_size=2)
    net.submit("r0", 2)  # r0 is primary of view 0 (p = v mod |R|)
    net.deliver_all()
    assert net.heights() == {"r0": 1, "r1": 1, "r2": 1, "r3": 1}
    # One pre-prepare from the primary; prepares only from the 3 backups; commits from all 4.
    assert [env.signer for env in kinds(net, PrePrepare)] == ["r0"]
    assert sorted(env.signer for env in kinds(net, Prepare)) == ["r1", "r2", "r3"]
    assert sorted(env.signer for env in kinds(net, Commit)) == ["r0", "r1", "r2", "r3"]
    block = net.executed["r1"][0].block
    assert block.header.prev_hash == GENESIS and block.header.state_root == ROOT0
    assert len({tuple(net.chain(r)) for r in net.names}) == 1


def test_certificate_is_a_quorum_of_commits_for_the_block_sec_4_2():
    net = Net(7, block_size=1)
    net.submit("r0")
    net.deliver_all()
    for name in net.names:
        effect = net.executed[name][0]
        signers = {c.signer for c in effect.certificate}
        assert len(signers) >= quorum(7) == 5
        assert all(c.message.digest == effect.block.hash and c.message.seq == 1 for c in effect.certificate)


def test_backup_relays_requests_to_the_primary_sec_4_1():
    net = Net(4, block_size=1)
    net.submit("r2")
    assert [dst for dst, _ in net.queue] == ["r0"]
    net.deliver_all()
    assert all(h == 1 for h in net.heights().values())


def test_prepared_needs_2f_prepares_from_distinct_backups_sec_4_2():
    net = Net(4, block_size=1)
    net.submit("r0")
    # Cut one replica (f = 1): the other three still form a quorum.
    net.cut = {"r3"}
    net.deliver_all()
    # With r3 cut, r0, r1 and r2 still form a quorum of 3 (n=4, f=1): progress.
    assert net.heights()["r1"] == 1
    net2 = Net(4, block_size=1)
    net2.cut = {"r2", "r3"}
    net2.submit("r0")
    net2.deliver_all()
    # r1 holds the pre-prepare and its own prepare but only 1 < 2f prepares: not prepared.
    assert net2.heights() == {"r0": 0, "r1": 0, "r2": 0, "r3": 0}
    assert not kinds(net2, Commit)


def test_primary_never_sends_prepare_and_its_prepare_is_refused_sec_4_2():
    net = Net(4, block_size=1)
    net.submit("r0")
    pre = next(env for dst, env in net.queue if type(env.message) is PrePrepare)
    forged = net.signers["r0"].sign(Prepare(0, 1, pre.message.digest))
    net.deliver_all()
    net.step("r1", Receive(0, forged))
    assert "prepare-from-primary" in net.drops["r1"]


def test_backups_accept_pre_prepares_only_from_the_primary_of_the_view_sec_4_2():
    net = Net(4, block_size=1)
    env = net.request()
    header = BlockHeader("test", 1, GENESIS, tx_root((env,)), ROOT0, 0, "r1", 1)
    block = Block.create(header, (env,))
    rogue = net.signers["r1"].sign(PrePrepare(0, 1, block.hash, block))
    net.step("r2", Receive(0, rogue))
    assert net.drops["r2"] == ["pre-prepare-not-from-primary"]


def test_conflicting_pre_prepare_for_same_view_and_sequence_is_refused_sec_4_2():
    net = Net(4, block_size=1)
    a, b = net.request(), net.request()
    blocks = []
    for env in (a, b):
        header = BlockHeader("test", 1, GENESIS, tx_root((env,)), ROOT0, 0, "r0", 1)
        blocks.append(Block.create(header, (env,)))
    first = net.signers["r0"].sign(PrePrepare(0, 1, blocks[0].hash, blocks[0]))
    second = net.signers["r0"].sign(PrePrepare(0, 1, blocks[1].hash, blocks[1]))
    net.step("r1", Receive(0, first))
    net.step("r1", Receive(0, second))
    assert net.drops["r1"] == ["conflicting-pre-prepare"]


@pytest.mark.parametrize("field,value,reason", [
    ("prev_hash", "22" * 32, "wrong-prev-hash"),
    ("state_root", "33" * 32, "wrong-state-root"),
    ("height", 2, "height-mismatch"),
])
def test_backups_refuse_a_proposal_that_does_not_extend_their_chain(field, value, reason):
    net = Net(4, block_size=1)
    env = net.request()
    fields = dict(chain_id="test", height=1, prev_hash=GENESIS, tx_root=tx_root((env,)), state_root=ROOT0,
                  view=0, proposer="r0", timestamp=1)
    fields[field] = value
    block = Block.create(BlockHeader(**fields), (env,))
    pre = net.signers["r0"].sign(PrePrepare(0, 1, block.hash, block))
    net.step("r1", Receive(0, pre))
    assert net.drops["r1"] == [reason]
    assert not kinds(net, Prepare)


def test_a_request_is_never_ordered_twice():
    net = Net(4, block_size=1)
    [env] = net.submit("r0")
    net.deliver_all()
    net.step("r0", Receive(0, env))  # the client (or an attacker) replays it
    net.deliver_all()
    assert net.heights()["r0"] == 1
    assert "duplicate-request" in net.drops["r0"]


def test_batch_timer_proposes_a_partial_block():
    net = Net(4, block_size=10)
    net.submit("r0", 3)
    assert "batch" in net.timers["r0"] and not net.queue
    net.fire("r0", "batch")
    net.deliver_all()
    assert [len(e.block.requests) for e in net.executed["r1"]] == [3]


def test_full_batch_cancels_the_timer_and_blocks_execute_in_order_sec_4_2():
    net = Net(4, block_size=5)
    net.submit("r0", 23)
    for _ in range(10):
        net.deliver_all()
        if "batch" in net.timers["r0"]:
            net.fire("r0", "batch")
    assert [len(e.block.requests) for e in net.executed["r3"]] == [5, 5, 5, 5, 3]
    heights = [e.block.height for e in net.executed["r3"]]
    assert heights == sorted(heights) == [1, 2, 3, 4, 5]


def test_checkpoints_become_stable_and_truncate_the_log_sec_4_3():
    net = Net(4, block_size=1, checkpoint_interval=5, watermark_window=10)
    for _ in range(12):
        net.submit("r0")
        net.deliver_all()
    for name in net.names:
        r = net.replicas[name]
        assert r.executed == 12
        assert r.low == 10  # h = sequence of the last stable checkpoint
        assert min(r.log) > 10 and len(r.log) <= 2
        assert len({e.signer for e in r.stable_proof}) >= quorum(4)


def test_log_stays_bounded_over_a_long_run_sec_4_3():
    net = Net(4, block_size=2, checkpoint_interval=4, watermark_window=8)
    peak = 0
    for _ in range(200):
        net.submit("r0", 2)
        net.deliver_all()
        peak = max(peak, *(len(r.log) + len(r.checkpoints) for r in net.replicas.values()))
    assert all(r.executed == 200 for r in net.replicas.values())
    assert peak <= 8 + 2


def test_high_watermark_stops_the_primary_until_a_checkpoint_is_stable_sec_4_3():
    net = Net(4, block_size=1, checkpoint_interval=2, watermark_window=2)
    net.cut = {"r2", "r3"}  # no checkpoint can become stable (and nothing commits)
    net.submit("r0", 1)
    net.deliver_all()
    assert net.replicas["r0"].last_proposed == 1 and net.heights()["r0"] == 0


def test_messages_outside_the_watermarks_are_dropped_sec_4_2():
    net = Net(4, watermark_window=10, checkpoint_interval=5)
    far = net.signers["r2"].sign(Prepare(0, 11, "ab" * 32))
    net.step("r1", Receive(0, far))
    assert net.drops["r1"] == ["beyond-high-watermark"]


@pytest.mark.parametrize("n", [4, 7, 10, 20, 31])
def test_any_n_reaches_agreement(n):
    net = Net(n, block_size=3)
    for _ in range(3):
        net.submit("r0", 3)
        net.deliver_all()
    assert set(net.heights().values()) == {3}
    assert len({tuple(net.chain(r)) for r in net.names}) == 1


def test_f_silent_replicas_do_not_stop_progress_but_f_plus_1_do():
    n = 10
    f = max_faulty(n)
    net = Net(n, block_size=1)
    net.cut = {f"r{i}" for i in range(n - f, n)}
    net.submit("r0")
    net.deliver_all()
    assert net.heights()["r1"] == 1
    net = Net(n, block_size=1)
    net.cut = {f"r{i}" for i in range(n - f - 1, n)}
    net.submit("r0")
    net.deliver_all()
    assert net.heights()["r1"] == 0
