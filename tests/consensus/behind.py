"""Set-ups shared by the tests of a replica behind the NEW-VIEW it installs
(test_new_view_behind*.py, test_new_view_blocks_review.py): four pure replicas of
tests/consensus/harness.py with a small window, one of them left behind."""

from consensus.durable import Accepted
from consensus.effects import Persist
from consensus.events import Receive, TimerFired
from consensus.messages import Commit, NewView
from consensus.replica import BLOCK_TIMER, FETCH_TIMER

from .harness import Net

HONEST = ("r1", "r2", "r3")


def small_net() -> Net:
    """Four replicas, one request a block, checkpoints every 2, window L = 4."""
    return Net(4, block_size=1, checkpoint_interval=2, watermark_window=4)


def view_change(net: Net, names=HONEST) -> None:
    """``names``' view-change timers fire now."""
    for name in names:
        net.step(name, TimerFired(net.now, "view-change"))


def accepted(net: Net, name: str, seq: int) -> list:
    """The pre-prepares at ``seq`` that ``name`` wrote as accepted, in order."""
    return [e.record.pre_prepare for e in net.effects[name]
            if type(e) is Persist and type(e.record) is Accepted and e.record.pre_prepare.message.seq == seq]


def behind(net: Net, lagging: str, stable: int = 4) -> str:
    """``lagging`` is cut off while the other three order blocks 1..``stable`` (their
    stable checkpoint; ``lagging``'s high watermark stays 4, so ``stable`` 8 is two
    windows behind). Block ``stable`` + 1 then prepares at the honest replicas but
    ``lagging`` (COMMITs lost). Then r0 is cut off. Returns that block's digest."""
    net.cut = {lagging}
    for _ in range(stable):
        net.submit("r0")
        net.deliver_all()
    assert all(net.replicas[r].low == stable for r in net.names if r != lagging)
    net.drop_if = lambda dst, env: type(env.message) is Commit
    net.submit("r0")
    net.deliver_all()
    following = stable + 1
    digest = net.replicas["r2"].log[following].digest
    assert all(net.replicas[r].log[following].prepared for r in HONEST if r != lagging)
    net.drop_if = None
    net.cut = {"r0"}
    assert net.replicas[lagging].executed == 0 and net.replicas[lagging].high == 4
    return digest


def hold_new_views_to(net: Net, dst: str) -> list:
    """From now on, NEW-VIEWs to ``dst`` are held back (returned list) rather than delivered."""
    held = []

    def hold(to, env):
        if to == dst and type(env.message) is NewView:
            held.append(env)
            return True
        return False

    net.drop_if = hold
    return held


def prepare_overtakes_new_view(stable: int) -> None:
    """r3, behind (window (0, 4]), changes to view 1 with the others, whose stable point is
    ``stable``; view 1's NEW-VIEW (min-s ``stable``, O = {``stable`` + 1}) is held back
    from r3 while r2 installs it and sends its PREPARE for O's entry, which reaches r3
    first (a vote is small, a NEW-VIEW large). Then r3 gets the NEW-VIEW and adopts
    1..``stable`` from r2: O's entry must commit without a retransmission."""
    net = small_net()
    digest = behind(net, "r3", stable)
    held = hold_new_views_to(net, "r3")
    view_change(net)
    net.deliver_all()
    net.drop_if = None
    r3 = net.replicas["r3"]
    assert held and r3.view == 1 and not r3.active
    for env in held:
        net.step("r3", Receive(net.now, env))
    net.deliver_all()
    entry = stable + 1
    assert r3.active and r3.kept_above == {entry: digest}
    net.adopt("r3", "r2", stable)
    net.deliver_all()
    assert all(net.chain(r)[stable:entry] == [digest] for r in HONEST), \
        f"{entry} waits for a retransmission: r2's PREPARE reached r3 just before the NEW-VIEW and was dropped"


def fetch_ticks(net: Net, names=HONEST, n: int = 2) -> None:
    """``n`` rounds of ``names``' fetch and block-fetch timers firing, each delivered."""
    for _ in range(n):
        for r in names:
            if FETCH_TIMER in net.timers[r]:
                net.fire(r, FETCH_TIMER)
            if BLOCK_TIMER in net.timers[r]:
                net.fire(r, BLOCK_TIMER)
        net.deliver_all()
