"""A node's writes in a loop, for the kill -9 test: ``python -m tests.node.sqlite_writer DATA_DIR``.

For each block, as a backup does: ``Accepted`` (its pre-prepare), ``Prepared`` (its
certificate), every fifth block ``Stabilised``, every seventh a ``ViewChangeSent``;
then the block is executed and appended. After each ``write`` or ``append`` returns it
prints ``r N`` (records made durable so far, counted over the whole sequence) or ``b H``
(the ledger's height). It resumes from the height it finds on disk, so it can be killed
and started again on the same directory. Everything is deterministic (derived keys,
Ed25519), so the test regenerates what it must find.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from itertools import count

from apps.records import Records
from consensus.block import Block, BlockHeader, tx_root
from consensus.durable import Accepted, Prepared, Stabilised, ViewChangeSent
from consensus.messages import Commit, PrePrepare, Prepare, PreparedProof, Request, ViewChange
from node.execution import Executor
from node.identity import derive_key
from node.signing import Signer
from node.state import WorldState, empty_state_root

CHAIN = "crash-test"
GENESIS = "ab" * 32
REPLICAS = ("node-0", "node-1", "node-2", "node-3")
TXS = 4  # per block


@lru_cache(maxsize=None)
def signer(name: str) -> Signer:
    return Signer(name, derive_key(7, CHAIN, name), CHAIN)


def executor(state: WorldState) -> Executor:
    return Executor({"records": Records()}, {"client-0": ("dept", "client")}, state)


def block_at(height: int, prev_hash: str, state_root: str) -> Block:
    client = signer("client-0")
    requests = tuple(client.sign(Request(height * TXS + i, "records", "put" if i % 3 else "delete",
                                         {"key": f"k{(height + i) % 11}", "value": f"v{height}-{i}"}, height))
                     for i in range(TXS))
    header = BlockHeader(CHAIN, height, prev_hash, tx_root(requests), state_root, 0, REPLICAS[0], height * 1000)
    return Block.create(header, requests)


def records_for(block: Block) -> list:
    """What the replica writes for ``block`` before it is executed."""
    h = block.height
    pre = signer(REPLICAS[0]).sign(PrePrepare(0, h, block.hash, block))
    prepares = tuple(signer(r).sign(Prepare(0, h, block.hash)) for r in REPLICAS[1:])
    proof = PreparedProof(pre, prepares)
    out = [Accepted(pre), Prepared(proof)]
    if h % 5 == 0:
        out.append(Stabilised(h, commits(block)))
    if h % 7 == 0:
        out.append(ViewChangeSent(ViewChange(h // 7, (h // 5) * 5, (), (proof,))))
    return out


def commits(block: Block) -> tuple:
    return tuple(signer(r).sign(Commit(0, block.height, block.hash)) for r in REPLICAS[:3])


def chain():
    """(block, its records, its outcome) for heights 1, 2, ...; ``state`` after each block."""
    state = WorldState()
    run = executor(state)
    prev, root = GENESIS, empty_state_root()
    for height in count(1):
        block = block_at(height, prev, root)
        recs = records_for(block)
        outcome = run.execute(block)
        yield block, recs, outcome, state
        prev, root = block.hash, outcome.state_root


def main(data_dir: str) -> None:
    from node.sqlite_store import open_node_storage

    store, ledger, _ = open_node_storage(data_dir, CHAIN, GENESIS, genesis_state_root=empty_state_root())
    written = 0
    for block, recs, outcome, _state in chain():
        if block.height <= ledger.height:
            written += len(recs)
            continue
        for record in recs:
            store.write(record)
            written += 1
            print(f"r {written}", flush=True)
        ledger.append(block, commits(block), outcome.receipts, outcome)
        print(f"b {ledger.height}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
