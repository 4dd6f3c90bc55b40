"""Issue 12, flooding a node process: admission by topic sender comes before decoding and
signature checks, so a member that floods costs a look-up per message and the node's
memory does not grow with the flood (docs/deployment.md, "Admission")."""

from __future__ import annotations

import asyncio
import json
import tracemalloc

import pytest

import citychain.cluster.process as process
from citychain.cluster.process import PROCESS_LIMITS, open_node
from consensus.messages import Commit, Prepare
from node.signing import Signer

FLOOD = 100_000


@pytest.mark.slow
def test_a_flooding_member_is_refused_before_decoding_and_memory_stays_bounded(chain, monkeypatch):
    genesis, root = chain
    clock = [0]

    def now_ns(_loop):  # 10 us a message: the flood lasts 1 s, whatever this machine's speed
        clock[0] += 10_000
        return clock[0]

    monkeypatch.setattr(process, "now_ns", now_ns)
    attacker = Signer("node-02", genesis.identities["node-02"].key, genesis.chain_id)
    # Distinct validly signed votes (every one would need a signature check), for
    # digests nobody proposed: each one admitted is also a vote the replica must hold.
    payloads = [json.dumps(attacker.sign((Prepare if i % 2 else Commit)(0, 1 + i % 20, f"{i:064x}")).to_dict()).encode()
                for i in range(4000)]
    honest = Signer("node-03", genesis.identities["node-03"].key, genesis.chain_id)
    honest_vote = json.dumps(honest.sign(Commit(0, 1, "ab" * 32)).to_dict()).encode()

    async def go():
        running = open_node(root / "genesis", root / "data" / "node-01", "node-01", None, asyncio.get_running_loop())
        try:
            membership = running.node.membership
            tracemalloc.start()
            started = clock[0]
            for i in range(FLOOD):
                running.deliver("citychain/taihu/bcast/node-02", payloads[i % len(payloads)])
            elapsed = (clock[0] - started) / 1e9
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            # The flood does not crowd out another member: its bucket is its own.
            running.deliver("citychain/taihu/bcast/node-03", honest_vote)
            return running, elapsed, membership.verifications, peak
        finally:
            running.transport.cancel_all_timers("node-01")
            running.node.store.close()

    running, elapsed, verifications, peak = asyncio.run(go())
    drops = running.metrics.drops_by_reason()
    admitted = PROCESS_LIMITS.burst + PROCESS_LIMITS.rate * elapsed
    assert drops["rate-limited"] >= FLOOD - admitted - 1
    assert verifications <= admitted + 2  # the flood reached the signature check only within its bucket
    assert "rate-limited" not in running.metrics.drops.get("node-03", {})
    replica = running.node.replica
    assert len(replica.log[1].commits) <= 2  # one digest per signer: the attacker's and node-03's
    # Memory: the flood's bytes (about 40 MB) are never all held; what is allocated is
    # the few thousand messages admitted (decoded, verified, remembered), not the flood.
    assert peak < 10 * 2**20, peak  # measured: 2.8 MB
    assert running.errors == 0
