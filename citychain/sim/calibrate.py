"""Measuring the real cost of the work the CPU model charges for."""

from __future__ import annotations

import time

from consensus.block import Block, BlockHeader, tx_root
from consensus.encoding import canonical
from node.assembly import chain_apps, client_directory
from node.execution import Executor
from node.identity import derive_key
from node.signing import Signer
from node.state import WorldState

from ..scenario import Scenario


def measure(samples: int = 2000) -> tuple[float, float]:
    """(sign, verify) in microseconds for a typical vote-sized message."""
    key = derive_key(0, "calibrate", "node")
    public = key.public_key()
    data = canonical({"chain": "calibrate", "digest": "ab" * 32, "seq": 12, "signer": "node-12",
                      "type": "prepare", "view": 0})
    start = time.perf_counter()
    for _ in range(samples):
        sig = key.sign(data)
    sign = (time.perf_counter() - start) / samples
    start = time.perf_counter()
    for _ in range(samples):
        public.verify(sig, data)
    verify = (time.perf_counter() - start) / samples
    return sign * 1e6, verify * 1e6


def measure_execute(scenario: Scenario, transactions: int = 300) -> float:
    """Microseconds to execute one of ``scenario``'s transactions (its apps over the world
    state, in blocks of its block size), as the CPU model's ``execute_tx_us`` charges."""
    from ..genesis import build_genesis
    from .run import rng_for
    from .workload import submissions

    genesis = build_genesis(scenario)
    doc = genesis.doc
    apps = chain_apps(doc)
    signers = {c.id: Signer(c.id, genesis.identities[c.id].key, genesis.chain_id) for c in genesis.clients}
    org_keys = {o["id"]: o["x25519"] for o in doc["organisations"]}
    spec = scenario.workload.model_copy(update={"transactions": transactions})
    requests = tuple(s.envelope for s in submissions(spec, genesis.clients, signers, rng_for(scenario.seed, "calibrate"),
                                                     apps, org_keys))
    executor = Executor(apps, client_directory(doc), WorldState())
    size = scenario.consensus.block_size
    elapsed, prev = 0.0, genesis.hash
    for height, i in enumerate(range(0, len(requests), size), start=1):
        batch = requests[i:i + size]
        header = BlockHeader(genesis.chain_id, height, prev, tx_root(batch), executor.state.root(), 0, "calibrate",
                             batch[-1].message.ts)
        block = Block.create(header, batch)
        start = time.perf_counter()
        executor.execute(block)
        elapsed += time.perf_counter() - start
        prev = block.hash
    return elapsed / max(1, len(requests)) * 1e6
