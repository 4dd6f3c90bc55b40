"""Adversarial review (revbt): a pre-prepare is judged on its date when it arrives
(consensus/replica.py, ``_receive_pre_prepare``), and one for a future view is then held
(``future``) without limit of time and taken, unjudged, once that view is installed. The
primary of a later view can so send today a block it wants ordered in an hour: the hour
is the window the date check was meant to close (docs/messages.md, "Block time": "a
pre-prepare delayed longer than max_clock_skew_ms + view_change_timeout_ms on the way ...
is refused as too old"; held is delayed). With a revocation published meanwhile and dated
back (`citychain crl revoke --at` a past date "revokes what the member signed since, for
blocks not yet committed"), the request of a client whose key was stolen is ordered,
since the block's requests were judged against the list held an hour earlier."""

from __future__ import annotations

from consensus.block import Block, BlockHeader, tx_root
from consensus.effects import Broadcast
from consensus.events import Receive
from consensus.messages import PrePrepare, Prepare

from .harness import CHAIN, GENESIS, ROOT0, Net

EPOCH = 1_767_225_600 * 10**9
SKEW = 1_000_000_000
T = 500_000_000
HOUR = 3600 * 10**9


def test_a_pre_prepare_held_for_a_later_view_is_judged_on_its_date_when_that_view_comes():
    net = Net(4, block_size=1, epoch_ns=EPOCH, max_clock_skew=SKEW, view_change_timeout=T)
    net.now = 1_000_000_000
    # r1, primary of view 1 and faulty, sends its view-1 block now: held by r2 and r3.
    stolen = net.request()
    header = BlockHeader(CHAIN, 1, GENESIS, tx_root((stolen,)), ROOT0, 1, "r1", EPOCH + net.now)
    block = Block.create(header, (stolen,))
    early = net.sign("r1", PrePrepare(1, 1, block.hash, block))
    for b in ("r2", "r3"):
        net.step(b, Receive(net.now, early))
    assert not net.drops["r2"] and not net.drops["r3"]  # held, as any pre-prepare of a later view
    # An hour later the primary of view 0 fails; the backups change view to r1's.
    net.now += HOUR
    net.cut = {"r0"}
    for b in ("r2", "r3"):
        net.step(b, Receive(net.now, net.request()))
    net.queue.clear()
    net.fire_all("view-change")
    net.deliver_all()
    assert {net.replicas[b].view for b in ("r2", "r3")} == {1}
    prepared = [b for b in ("r2", "r3") for e in net.effects[b]
                if type(e) is Broadcast and type(e.message) is Prepare and e.message.digest == block.hash]
    assert not prepared, f"{prepared} prepared a block dated an hour before their clocks"
