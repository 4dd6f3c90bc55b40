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
    net = Net(4, max_pending=8, block_size=100)  # a share of 2; blocks wait for the batch timer
    flooder, other = _client("flooder"), _client("other")
    backup = net.replicas["r1"]
    for _ in range(5):
        net.step("r1", Receive(net.now, flooder()))
    assert net.drops["r1"] == ["mempool-client-full"] * 3
    assert len(backup.pending) == 2
    net.step("r1", Receive(net.now, other()))
    assert len(backup.pending) == 3 and backup.pending_of == {"flooder": 2, "other": 1}

    net.deliver_all()  # the backup forwarded its requests to the primary; the primary orders them
    net.fire("r0", BATCH_TIMER)
    net.deliver_all()
    assert [len(e.block.requests) for e in net.executed["r1"]] == [3]
    assert backup.pending == {} and backup.pending_of == {}
    net.step("r1", Receive(net.now, flooder()))
    assert len(backup.pending) == 1
