"""Adversarial review (rev2): replay interleavings tests/citychain/test_replay.py does not try."""

import copy
from collections import Counter

from consensus.block import Block, BlockHeader, tx_root
from consensus.messages import PrePrepare, Request
from node.signing import Signer
from tests.citychain.hostile_world import MS, Submissions, ledger_digests, once_everywhere, simulate, small


def test_a_replay_to_the_new_primary_as_it_sends_its_new_view_never_executes_twice(monkeypatch):
    """The primary crashes at 0.3 s. The moment the new primary (node-01) broadcasts its
    NEW-VIEW, whose O set re-proposes the blocks left prepared, every request is replayed
    to it (at that instant and 1 ms later), before it has executed the re-proposed blocks:
    the re-proposed requests are in blocks it has not executed, so only ``accepted`` (or
    ``pending``) stands between them and a second proposal."""
    box = {}

    def inject(run):
        box["s"] = subs = Submissions(run)
        net = run.network
        real = net.broadcast

        def broadcast(src, env, at):
            real(src, env, at)
            if src == "node-01" and env.message.KIND == "new-view" and "at" not in box:
                box["at"] = at
                subs.replay_at(at, ["node-01"])
                subs.replay_at(at + 1 * MS, ["node-01"])
        net.broadcast = broadcast

    run = simulate(small("taihu", faults=[{"at_ms": 300, "crash": "primary"}]), monkeypatch, inject=inject)
    assert "at" in box, "no NEW-VIEW from node-01"
    once_everywhere(run, set(box["s"].envelopes))
    assert run.metrics.drops["node-01"]["duplicate-request"] > 0


def test_a_byzantine_primary_proposing_one_request_at_two_pipelined_sequences_executes_it_once(monkeypatch):
    """After the workload, node-00 (primary) proposes a fresh request at height h + 1 and,
    at the same instant, the same request again at h + 2 (a block that extends h + 1 with
    the right state root). The backups hold h + 2 until h + 1 executes, then must refuse it."""
    box = {}

    def inject(run):
        spare = run.genesis.clients.pop()

        def go(_arg, now):
            ref = run.nodes["node-01"]
            env = Signer(spare.id, run.genesis.identities[spare.id].key, run.genesis.chain_id).sign(
                Request(1, "records", "put", {"key": "twice", "value": "v"}, now))
            box["digest"] = env.digest
            key = run.genesis.identities["node-00"].key
            sign = Signer("node-00", key, run.genesis.chain_id).sign
            h = ref.ledger.height
            h1 = BlockHeader(run.genesis.chain_id, h + 1, ref.ledger.head_hash, tx_root((env,)),
                             ref.executor.state.root(), 0, "node-00", run.membership.epoch_ns + now)
            b1 = Block.create(h1, (env,))
            shadow = copy.deepcopy(ref.executor)
            shadow.execute(b1)
            h2 = BlockHeader(run.genesis.chain_id, h + 2, b1.hash, tx_root((env,)), shadow.state.root(), 0,
                             "node-00", run.membership.epoch_ns + now + 1)  # block time: calendar
            b2 = Block.create(h2, (env,))
            p1 = sign(PrePrepare(0, b1.height, b1.hash, b1))
            p2 = sign(PrePrepare(0, b2.height, b2.hash, b2))
            for backup in ("node-01", "node-02", "node-03"):
                run.nodes[backup].on_message(p2, now)  # the later one first: held back
                run.nodes[backup].on_message(p1, now)
        run.engine.at(3000 * MS, go, None)

    run = simulate(small("taihu"), monkeypatch, inject=inject)
    for backup in ("node-01", "node-02", "node-03"):
        digests = ledger_digests(run, backup)
        assert Counter(digests)[box["digest"]] <= 1, backup
        assert len(digests) == len(set(digests))
    assert sum(run.metrics.drops[b].get("replayed-request", 0) for b in ("node-01", "node-02", "node-03")) == 3


def test_a_replay_to_a_catching_up_node_holding_blocks_it_has_not_executed_never_executes_twice(monkeypatch):
    """node-03 is down from 0.2 s to 2.5 s of a 4 s workload. After it restarts, new
    pre-prepares reach it above blocks it is still fetching (held, not executed, their
    requests neither done nor accepted); every request is replayed to it every 7 ms for
    0.3 s, so some replays land while it holds such blocks. node-03 takes all its work
    first come, first served (no fair queuing, node/fairqueue.py): with its senders
    queued, the pre-prepares that arrive while it adopts fetched blocks wait in their
    queues, not in its replica, and the replays would land before the replica holds them."""
    box = {"held": 0}

    def inject(run):
        box["s"] = subs = Submissions(run)
        node = run.nodes["node-03"]
        node.turns.window = 1 << 62
        for k in range(1, 300, 7):
            when = 2500 * MS + k * MS

            def note(_a, now):
                if node.replica.deferred or any(not s.committed and s.block is not None and s.seq > node.replica.executed
                                                for s in node.replica.log.values()):
                    box["held"] += 1
            run.engine.at(when, note, None)
            subs.replay_at(when, ["node-03"])

    run = simulate(small("taihu", transactions=400, faults=[{"at_ms": 200, "crash": "node-3"},
                                                            {"at_ms": 2500, "recover": "node-3"}]),
                   monkeypatch, inject=inject)
    once_everywhere(run, set(box["s"].envelopes))
    assert box["held"] > 0, "no replay landed while node-03 held an unexecuted block"
