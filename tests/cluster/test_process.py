"""A node process's parts without a broker: hostile bytes, a failing store, timers and the
inbox, and the client's f + 1 rule over status notices."""

from __future__ import annotations

import asyncio
import json

import pytest

from citychain.cluster.load import Tracker
from citychain.cluster.process import open_node
from citychain.cluster.transport import MqttTransport
from consensus.messages import Prepare
from node.metrics import Metrics
from node.signing import Signer
from node.sqlite_store import StorageError

MEMBERS = frozenset({"node-00", "node-01", "node-02", "node-03"})


def run_node(chain, body):
    """Open node-01 from its genesis and data directory inside a loop and run ``body(node)``."""
    genesis, root = chain

    async def go():
        running = open_node(root / "genesis", root / "data" / "node-01", "node-01", None, asyncio.get_running_loop())
        try:
            return body(running)
        finally:
            running.transport.cancel_all_timers("node-01")
            running.node.store.close()
    return asyncio.run(go())


def test_hostile_bytes_are_dropped_and_counted_and_the_node_goes_on(chain):
    genesis, _ = chain
    stranger = Signer("node-02", genesis.identities["node-02"].key, "another-chain").sign(Prepare(0, 1, "ab" * 32))
    good = Signer("node-02", genesis.identities["node-02"].key, genesis.chain_id).sign(Prepare(0, 1, "ab" * 32))
    forged = dict(good.to_dict())
    forged["sig"] = "00" * 64
    hostile = [b'{"blocks":5}', b'{"data":"{\\"a\\":NaN}","sig":"' + b"00" * 64 + b'"}', b"[" * 200_000,
               b"\xff\xfe garbage", b"{}", json.dumps(stranger.to_dict()).encode(), json.dumps(forged).encode()]

    def body(running):
        for payload in hostile:
            running.deliver("citychain/taihu/to/node-01/node-02", payload)
        running.deliver("not/a/topic", b"{}")
        running.deliver("citychain/taihu/to/node-01/node-02", json.dumps(good.to_dict()).encode())
        return running

    running = run_node(chain, body)
    drops = running.metrics.drops_by_reason()
    assert sum(drops.values()) == len(hostile) + 1, drops
    assert drops["unknown-topic"] == 1 and drops["wrong-chain"] == 1 and drops["bad-signature"] == 1
    assert running.errors == 0 and running.failed is None
    assert running.transport.handled == len(hostile) + 2


def test_a_failed_durable_write_stops_the_node_and_nothing_more_is_sent(chain):
    stopped = []

    def body(running):
        running.on_failure = stopped.append

        def broken(*_args):
            raise StorageError("node.sqlite: database or disk is full")
        running.node.on_message = broken
        running.transport.post_raw("citychain/taihu/bcast/node-01", b"queued", "prepare")
        running.deliver("citychain/taihu/to/node-01/node-02", json.dumps(
            Signer("node-02", chain[0].identities["node-02"].key, chain[0].chain_id)
            .sign(Prepare(0, 1, "ab" * 32)).to_dict()).encode())
        running.node.on_timer = lambda *a: pytest.fail("a stopped node handles nothing more")
        running.on_timer("sync", 0)
        return running

    running = run_node(chain, body)
    assert running.failed is not None and stopped == [running.failed]
    assert "disk is full" in str(running.failed)
    assert not running.transport.outbox, "nothing queued may leave after the store failed"


def test_a_due_timer_waits_for_what_already_arrived_but_not_for_a_lost_inbox():
    async def go():
        fired = []
        transport = MqttTransport("taihu", "node-01", asyncio.get_running_loop(), Metrics())
        backlog = [2]
        transport.attach(lambda name, now: fired.append(name), lambda: backlog[0])
        transport._fire("view")  # due while two messages wait
        assert fired == []
        transport.handled_one()
        assert fired == []
        transport.handled_one()
        assert fired == ["view"]  # after both
        transport._fire("sync")
        transport.cancel_timer("node-01", "sync")  # the replica cancelled it meanwhile
        transport.handled_one()
        transport.handled_one()
        assert fired == ["view"]
        transport._fire("batch")
        transport.inbox_lost()  # the connection dropped: nothing it waited for will come
        assert fired == ["view", "batch"]
    asyncio.run(go())


def test_answered_needs_f_plus_1_consensus_nodes_reporting_the_same_block_contents():
    t = Tracker(1, MEMBERS)
    t.submitted = {"tx-never": 0.0, "tx-real": 0.0}
    block = {"height": 1, "hash": "H", "rejected": []}
    t.on_notice({"node": "node-03", "blocks": [{**block, "txs": ["tx-never"]}]}, 1.0)  # a faulty node's story
    t.on_notice({"node": "client-01", "blocks": [{**block, "txs": ["tx-never"]}]}, 1.5)  # not a consensus node
    t.on_notice({"node": "node-01", "blocks": [{**block, "txs": ["tx-real"]}]}, 2.0)
    assert t.answered == {}
    t.on_notice({"node": "node-02", "blocks": [{"height": 1, "hash": "H"}]}, 2.5)  # malformed: ignored
    t.on_notice({"node": "node-02", "blocks": [{**block, "txs": ["tx-real"]}]}, 3.0)
    assert t.answered == {"tx-real": 3.0} and t.malformed == 1


def test_a_block_report_is_repeated_in_heartbeats_and_again_after_a_reconnection(chain):
    """The notice that first reports a block can die with the broker, or reach it before the
    watcher has resubscribed: each block's report rides in the next REPEATS heartbeats,
    and in REPEATS more after a reconnection, so f + 1 reports still arrive."""
    from types import SimpleNamespace

    from citychain.cluster.process import REPEATS

    def body(running):
        sent = []
        running.publish_status = lambda blocks: sent.append([b["height"] for b in blocks])
        request = SimpleNamespace(digest="tx-1")
        entry = SimpleNamespace(block=SimpleNamespace(height=1, hash="H1", requests=[request]),
                                receipts=[SimpleNamespace(tx="tx-1", ok=True)])
        running.node.ledger = SimpleNamespace(height=1, entries=[entry], head_hash="H1", transactions=1)
        running.after_step()
        for _ in range(REPEATS + 2):
            running.heartbeat()
        running.reconnected()
        for _ in range(REPEATS + 1):
            running.heartbeat()
        return sent

    sent = run_node(chain, body)
    assert sent == [[1]] + [[1]] * REPEATS + [[]] * 2 + [[1]] * REPEATS + [[]]


def test_repeated_reports_count_each_node_once():
    t = Tracker(1, MEMBERS)
    t.submitted = {"tx": 0.0}
    report = {"height": 1, "hash": "H", "txs": ["tx"], "rejected": []}
    for at in (1.0, 2.0, 3.0):
        t.on_notice({"node": "node-01", "blocks": [report]}, at)  # the first notice, then two heartbeats
    assert t.answered == {}
    t.on_notice({"node": "node-02", "blocks": [report]}, 4.0)  # node-02's first notice was lost: a heartbeat
    assert t.answered == {"tx": 4.0}
