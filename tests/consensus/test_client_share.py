"""The mempool is fair per client: one client may hold at most max_pending // CLIENT_SHARE
of the requests waiting to be ordered (docs/messages.md, "Admission and bounds")."""

from __future__ import annotations

from consensus.events import Receive
from consensus.messages import Request
from consensus.replica import BATCH_TIMER
from node.identity import derive_key
from node.signing import Signer

from .harness import CHAIN, Net


def _client(name: str):
    signer = Signer(name, derive_key(0, CHAIN, name), CHAIN)
    nonce = iter(range(1, 1_000))
    return lambda: signer.sign(Request(n := next(nonce), "records", "put", {"key": f"{name}{n}"}, n))


def test_a_client_at_its_share_is_refused_while_others_are_taken_and_its_share_frees_when_ordered():
    """The share (2 of 8) binds once the pool is half full (4) and another client waits."""
    net = Net(4, max_pending=8, block_size=100)  # blocks wait for the batch timer
    flooder, other = _client("flooder"), _client("other")
    backup = net.replicas["r1"]
    net.step("r1", Receive(net.now, other()))
    for _ in range(5):
        net.step("r1", Receive(net.now, flooder()))
    # over its share while the pool is under half full (3 of 8 waiting), then refused
    assert net.drops["r1"] == ["mempool-client-full"] * 2
    assert len(backup.pending) == 4 and backup.pending_of == {"flooder": 3, "other": 1}
    net.step("r1", Receive(net.now, other()))
    assert len(backup.pending) == 5 and backup.pending_of == {"flooder": 3, "other": 2}

    net.deliver_all()  # the backup forwarded its requests to the primary; the primary orders them
    net.fire("r0", BATCH_TIMER)
    net.deliver_all()
    assert [len(e.block.requests) for e in net.executed["r1"]] == [5]
    assert backup.pending == {} and backup.pending_of == {}
    net.step("r1", Receive(net.now, flooder()))
    assert len(backup.pending) == 1


def test_a_lone_busy_client_is_never_held_to_a_share():
    """Nobody else waits: refusing it would only make it retry to every node, and the
    backups' timers would blame the primary for what it refused (review revfq, R4)."""
    net = Net(4, max_pending=8, block_size=100)
    busy = _client("busy")
    for _ in range(10):
        net.step("r1", Receive(net.now, busy()))
    assert net.drops["r1"] == ["mempool-full"] * 2  # the pool's own bound, not a share
    assert net.replicas["r1"].pending_of == {"busy": 8}


def _counts_hold(net: Net) -> None:
    from collections import Counter
    for name, r in net.replicas.items():
        assert r.pending_of == dict(Counter(env.signer for env in r.pending.values())), name


def test_a_clients_count_follows_its_requests_through_a_view_change_that_returns_them_to_waiting():
    """The interleaving that would leave a stale count (and refuse an honest client for
    good): the backup r1 holds a client's requests, accepts r0's pre-prepare of them
    (they leave ``pending``), nothing prepares, the view changes to r1, the block is not
    re-proposed so its requests go back to ``pending``, and r1 proposes them again."""
    from consensus.messages import Commit, Prepare
    from consensus.replica import VIEW_TIMER

    net = Net(4, max_pending=8, block_size=2)
    client = _client("client")
    for _ in range(2):
        net.step("r1", Receive(net.now, client()))
    assert net.replicas["r1"].pending_of == {"client": 2}
    net.drop_if = lambda dst, env: type(env.message) in (Prepare, Commit)
    net.deliver_all()  # forwarded to r0, which proposes them; r1 accepts; nothing prepares
    _counts_hold(net)
    assert net.replicas["r1"].pending_of == {} and len(net.replicas["r1"].accepted) == 2
    net.drop_if = None
    net.fire_all(VIEW_TIMER)
    net.deliver_all()
    _counts_hold(net)
    assert net.replicas["r1"].view == 1
    assert [len(e.block.requests) for e in net.executed["r1"]] == [2]
    assert all(r.pending_of == {} for r in net.replicas.values())
    for _ in range(2):  # its share is whole again: r1, now primary, takes both and proposes them
        net.step("r1", Receive(net.now, client()))
    net.deliver_all()
    _counts_hold(net)
    assert "mempool-client-full" not in net.drops["r1"]
    assert [len(e.block.requests) for e in net.executed["r1"]] == [2, 2]
