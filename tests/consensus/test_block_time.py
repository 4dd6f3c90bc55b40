"""Block time (docs/messages.md, "Block time"): a block's timestamp is calendar time, and a
backup takes a proposal only if it is dated within the clock window of its own clock.

The interleavings that would break it, each driven below:
- a faulty primary dating a block far ahead (a not-yet-valid certificate passes early);
- a faulty primary back-dating a block (a revoked client's request passes), or freezing
  the chain's time by dating each block 1 ns after the previous one;
- honest nodes whose clocks sit exactly at the skew edge: they must still commit;
- a primary holding a request whose client's certificate lapses before the block's date:
  it must leave it out, or every honest backup refuses its block, view after view;
- a revocation reaching a node between its PREPARE and the block's COMMIT.
"""

from __future__ import annotations

from dataclasses import replace

from consensus.block import Block, BlockHeader, tx_root
from consensus.events import Receive
from consensus.messages import PrePrepare
from consensus.replica import PROPOSE_AHEAD, Replica

from .harness import CHAIN, GENESIS, ROOT0, Net

EPOCH = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z, the simulator's SIM_EPOCH
SKEW = 1_000_000_000
T = 500_000_000  # view_change_timeout


def _net(**config) -> Net:
    return Net(4, block_size=1, epoch_ns=EPOCH, max_clock_skew=SKEW, view_change_timeout=T, **config)


def _clock(net: Net, name: str, offset: int) -> None:
    """``name``'s calendar clock runs ``offset`` ns ahead of the others'."""
    r = net.replicas[name]
    net.replicas[name] = Replica(replace(r.config, epoch_ns=r.config.epoch_ns + offset))


def _forged(net: Net, timestamp: int, requests=None) -> object:
    """A pre-prepare from r0 (primary of view 0) for height 1, correct but for its date."""
    requests = tuple(requests if requests is not None else (net.request(),))
    header = BlockHeader(CHAIN, 1, GENESIS, tx_root(requests), ROOT0, 0, "r0", timestamp)
    block = Block.create(header, requests)
    return net.sign("r0", PrePrepare(0, 1, block.hash, block))


def _offer(net: Net, pre, backups=("r1", "r2", "r3")) -> None:
    for b in backups:
        net.step(b, Receive(net.now, pre))


def test_an_honest_primary_dates_its_block_on_the_calendar_and_strictly_after_the_last():
    net = _net()
    net.now = 5_000_000
    net.submit("r0")
    net.deliver_all()
    net.submit("r0")
    net.deliver_all()
    first, second = (e.block.header.timestamp for e in net.executed["r1"])
    assert first == EPOCH + 5_000_000
    assert second == first + 1  # the same instant: still strictly after
    assert all(not d for d in net.drops.values()), net.drops


def test_a_block_dated_further_ahead_than_the_skew_is_refused_at_every_backup():
    net = _net()
    net.now = 2_000_000_000
    _offer(net, _forged(net, EPOCH + net.now + SKEW + 1))
    assert all(net.drops[b] == ["timestamp-too-far-ahead"] for b in ("r1", "r2", "r3")), net.drops
    assert not any(type(env.message).__name__ == "Prepare" for _, env in net.sent)


def test_a_block_dated_exactly_at_the_skew_edge_commits():
    net = _net()
    net.now = 2_000_000_000
    pre = _forged(net, EPOCH + net.now + SKEW)
    net.step("r0", Receive(net.now, pre))
    _offer(net, pre)
    net.deliver_all()
    assert net.heights() == {"r0": 1, "r1": 1, "r2": 1, "r3": 1}


def test_back_dating_beyond_skew_plus_timeout_is_refused_and_so_is_freezing_time():
    """The primary dates a block 1 ns before the window (skew + T behind the backups'
    clocks): refused as too old. The previous block's timestamp + 1 is no escape: once the
    chain's last block is older than the window, a block dated just after it is too old."""
    net = _net()
    net.now = 10_000_000_000
    _offer(net, _forged(net, EPOCH + net.now - SKEW - T - 1))
    assert all(net.drops[b] == ["timestamp-too-old"] for b in ("r1", "r2", "r3")), net.drops
    inside = _net()
    inside.now = 10_000_000_000
    pre = _forged(inside, EPOCH + inside.now - SKEW - T)
    inside.step("r0", Receive(inside.now, pre))
    _offer(inside, pre)
    inside.deliver_all()
    assert inside.heights()["r1"] == 1, inside.drops
    head = inside.executed["r1"][0].block
    inside.now += SKEW + T + 1  # time passes; a faulty primary dates the next block head + 1
    requests = (inside.request(),)
    header = BlockHeader(CHAIN, 2, head.hash, tx_root(requests), inside.replicas["r1"].state_root, 0, "r0",
                         head.header.timestamp + 1)
    block = Block.create(header, requests)
    _offer(inside, inside.sign("r0", PrePrepare(0, 2, block.hash, block)))
    assert all(inside.drops[b] == ["timestamp-too-old"] for b in ("r1", "r2", "r3")), inside.drops


def test_honest_clocks_at_the_skew_edge_still_commit():
    """The primary's clock runs exactly max_clock_skew ahead of every backup's: each takes
    its blocks, one after another. One ns further and the backups refuse them."""
    net = _net()
    _clock(net, "r0", SKEW)
    net.now = 1_000_000_000
    for _ in range(3):
        net.now += 1_000_000
        net.submit("r0")
        net.deliver_all()
    assert net.heights() == {"r0": 3, "r1": 3, "r2": 3, "r3": 3}, net.drops
    assert net.executed["r3"][-1].block.header.timestamp == EPOCH + net.now + SKEW
    # One ns further and r3 refuses; the other three still make a quorum (n = 4, f = 1).
    edge = _net()
    _clock(edge, "r0", SKEW + 1)
    edge.now = 1_000_000_000
    edge.submit("r0")
    edge.deliver_all()
    assert all(edge.drops[b] == ["timestamp-too-far-ahead"] for b in ("r1", "r2", "r3")), edge.drops
    assert edge.heights() == {"r0": 0, "r1": 0, "r2": 0, "r3": 0}
    # Clocks at the edge on both sides: r1 at +skew/2, r3 at -skew/2 (a skew apart), and r0
    # at +skew/2 proposing: r3 sees r0's date exactly skew ahead, and takes it.
    mixed = _net()
    for name, offset in (("r0", SKEW // 2), ("r1", SKEW // 2), ("r3", -SKEW // 2)):
        _clock(mixed, name, offset)
    mixed.now = 1_000_000_000
    mixed.submit("r0")
    mixed.deliver_all()
    assert mixed.heights() == {"r0": 1, "r1": 1, "r2": 1, "r3": 1}, mixed.drops


def test_a_primary_whose_clock_is_behind_the_last_block_waits_for_it():
    """r0's clock is skew ahead and dates block 1 there; then r1 (clock at 0) is primary
    (view 1). Dating its block after block 1 would put it skew ahead of r1's own clock,
    and r2, r3 at the slow edge would refuse it: r1 waits (its batch timer) until its
    clock passes block 1's date, then proposes on its own clock."""
    net = _net()
    _clock(net, "r0", SKEW)
    net.now = 1_000_000_000
    net.submit("r0")
    net.deliver_all()
    r1 = net.replicas["r1"]
    r1.view, r1.installed_view = 1, 1  # r1 primary of view 1, as after a view change
    net.submit("r1")
    assert net.timers["r1"].get("batch") == SKEW + 1 - PROPOSE_AHEAD, net.timers["r1"]
    assert net.heights()["r1"] == 1
    net.now += SKEW + 1 - PROPOSE_AHEAD
    net.fire("r1", "batch")
    block = net.effects["r1"][-1]
    proposed = [e for e in net.effects["r1"] if type(e).__name__ == "Broadcast"
                and type(e.message) is PrePrepare and e.message.seq == 2]
    assert proposed and proposed[0].message.block.header.timestamp == EPOCH + net.now + PROPOSE_AHEAD, block


def test_a_primary_leaves_out_a_request_whose_certificate_lapsed_before_the_blocks_date():
    """A request accepted while its client was valid, still waiting when the client's
    certificate lapses: an honest primary must not propose it (every honest backup would
    refuse the block, and the next primary would propose it again)."""
    lapsed_at = EPOCH + 1_000_000_000
    net = _net(request_valid_at=lambda env, at: at < lapsed_at or env.message.nonce != 1)
    net.now = 900_000_000
    for name in net.names:  # batch: the first request waits for the block to fill
        r = net.replicas[name]
        net.replicas[name] = Replica(replace(r.config, block_size=2))
    net.submit("r0")  # nonce 1: valid now, lapsed at 1 s
    assert net.timers["r0"].get("batch")
    net.now = 1_100_000_000
    net.fire("r0", "batch")
    assert "request-certificate-lapsed" in net.drops["r0"]
    assert not net.replicas["r0"].pending
    assert net.replicas["r0"].pending_of == {}  # the client's share of the pool is free again
    net.submit("r0", 2)
    net.deliver_all()
    assert net.heights() == {"r0": 1, "r1": 1, "r2": 1, "r3": 1}
    assert all(r.message.nonce != 1 for r in net.executed["r1"][0].block.requests)


def test_a_revocation_between_prepare_and_commit_does_not_undo_the_block():
    """r1 and r2 take the pre-prepare and PREPARE; then the client is revoked at r3 (its
    new list, loaded late, dates the revocation before the block): r3 refuses the same
    pre-prepare, modelled by the node's drop before the replica sees it. r0, r1, r2 are a
    quorum: they commit; r3 executes the block when the commit certificate arrives
    (state transfer), since a committed block is final whatever list a node holds."""
    net = _net()
    net.now = 1_000_000_000
    pre = _forged(net, EPOCH + net.now)
    net.step("r0", Receive(net.now, pre))
    net.drop_if = lambda dst, env: dst == "r3" and type(env.message) is PrePrepare
    _offer(net, pre, ("r1", "r2"))
    net.deliver_all()
    assert net.heights() == {"r0": 1, "r1": 1, "r2": 1, "r3": 0}
    assert net.chain("r0") == net.chain("r1") == net.chain("r2")
    # r3 holds a quorum of COMMITs for a block it never accepted: its fetch timer asks
    # the committers for it (state transfer adopts a certified block without judging its
    # requests again, node/sync.py), rather than wait or ask for a view change.
    assert net.replicas["r3"].executed == 0 and "fetch" in net.timers["r3"]
    net.fire("r3", "fetch")
    assert [(c.target, c.peers) for c in net.catch_ups["r3"]] == [(1, ("r0", "r1", "r2"))]


def test_a_block_refused_for_its_date_leads_to_a_view_change_and_the_request_commits():
    """The backups hold a client's request (their timers run); the faulty primary r0
    proposes it dated too far ahead. Refused everywhere, the request does not execute,
    the timers fire, and r1, primary of view 1, proposes it dated on its own clock."""
    net = _net()
    net.now = 2_000_000_000
    env = net.request()
    for b in ("r1", "r2", "r3"):
        net.step(b, Receive(net.now, env))
    net.queue.clear()  # what the backups forwarded to r0: r0 is faulty and acts only as scripted
    _offer(net, _forged(net, EPOCH + net.now + SKEW + 1, (env,)))
    assert all(net.drops[b] == ["timestamp-too-far-ahead"] for b in ("r1", "r2", "r3")), net.drops
    net.cut = {"r0"}
    net.now += T
    net.fire_all("view-change")
    net.deliver_all()
    assert {net.replicas[b].view for b in ("r1", "r2", "r3")} == {1}
    assert all(net.heights()[b] == 1 for b in ("r1", "r2", "r3")), net.heights()
    block = net.executed["r2"][0].block
    assert block.header.proposer == "r1" and block.header.timestamp == EPOCH + net.now
    assert [r.digest for r in block.requests] == [env.digest]
