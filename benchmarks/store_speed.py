"""SQLite storage speed on this disk: durable records/s and blocks/s (docs/storage.md).

Writes what a backup writes per block (``Accepted``, ``Prepared``, a ``Stabilised``
every tenth block) into a ``SqliteStore``, and appends the blocks with their
world-state writes to a ``SqliteLedger``, each write one fsynced transaction; then
reopens the directory and times the restart. Prints figures only; nothing asserts them.

    python benchmarks/store_speed.py                    # 200 blocks of 100 transactions
    python benchmarks/store_speed.py --blocks 500 --txs 10 --dir /var/lib/citychain-bench
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.records import Records  # noqa: E402
from consensus.block import Block, BlockHeader, tx_root  # noqa: E402
from consensus.durable import Accepted, Prepared, Stabilised  # noqa: E402
from consensus.messages import Commit, PrePrepare, Prepare, PreparedProof, Request  # noqa: E402
from node.execution import Executor  # noqa: E402
from node.identity import derive_key  # noqa: E402
from node.record_codec import encode_record  # noqa: E402
from node.signing import Signer  # noqa: E402
from node.sqlite_store import open_node_storage  # noqa: E402
from node.state import WorldState, empty_state_root  # noqa: E402

CHAIN, GENESIS = "bench", "ab" * 32
REPLICAS = tuple(f"node-{i:02d}" for i in range(20))  # n = 20: a quorum of 14 prepares and commits
QUORUM = 14


def prepare(blocks: int, txs: int):
    """Signed blocks, each block's records and its outcome, made before any timing starts."""
    signers = {name: Signer(name, derive_key(1, CHAIN, name), CHAIN) for name in REPLICAS + ("client-0",)}
    state = WorldState()
    executor = Executor({"records": Records()}, {"client-0": ("dept", "client")}, state)
    prev, root, out = GENESIS, empty_state_root(), []
    for h in range(1, blocks + 1):
        requests = tuple(signers["client-0"].sign(
            Request(h * txs + i, "records", "put", {"key": f"k{(h * txs + i) % 5000}", "value": "v" * 64}, h))
            for i in range(txs))
        header = BlockHeader(CHAIN, h, prev, tx_root(requests), root, 0, REPLICAS[0], h * 1000)
        block = Block.create(header, requests)
        pre = signers[REPLICAS[0]].sign(PrePrepare(0, h, block.hash, block))
        proof = PreparedProof(pre, tuple(signers[r].sign(Prepare(0, h, block.hash)) for r in REPLICAS[1:QUORUM]))
        certificate = tuple(signers[r].sign(Commit(0, h, block.hash)) for r in REPLICAS[:QUORUM])
        records = [Accepted(pre), Prepared(proof)] + ([Stabilised(h, certificate)] if h % 10 == 0 else [])
        outcome = executor.execute(block)
        out.append((block, certificate, records, outcome))
        prev, root = block.hash, outcome.state_root
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--txs", type=int, default=100, help="transactions per block")
    parser.add_argument("--dir", help="where to write (default: a temporary directory under /tmp)")
    args = parser.parse_args()
    chain = prepare(args.blocks, args.txs)
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="citychain-store-"))
    data = base / "node"
    shutil.rmtree(data, ignore_errors=True)
    try:
        store, ledger, _ = open_node_storage(data, CHAIN, GENESIS, genesis_state_root=empty_state_root())
        records = [r for _, _, recs, _ in chain for r in recs]
        record_bytes = sum(len(encode_record(r)) for r in records)
        start = time.perf_counter()
        for block, certificate, recs, outcome in chain:
            for record in recs:
                store.write(record)
        record_s = time.perf_counter() - start
        start = time.perf_counter()
        for block, certificate, recs, outcome in chain:
            ledger.append(block, certificate, outcome.receipts, outcome)
        block_s = time.perf_counter() - start
        store.close()
        size = sum(p.stat().st_size for p in data.iterdir())
        start = time.perf_counter()
        store, ledger, state = open_node_storage(data, CHAIN, GENESIS, genesis_state_root=empty_state_root())
        reopen_s = time.perf_counter() - start
        assert ledger.height == args.blocks and state.root() == chain[-1][3].state_root
        store.close()
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    per_block = len(records) / args.blocks
    print(f"SqliteStore  (WAL, synchronous=FULL) on {base}: {args.blocks} blocks of {args.txs} transactions, "
          f"n = {len(REPLICAS)}")
    print(f"  durable records   {len(records) / record_s:9.0f} records/s  "
          f"({record_s / len(records) * 1e3:.2f} ms each, {record_bytes / len(records) / 1024:.1f} KiB average)")
    print(f"  ledger appends    {args.blocks / block_s:9.0f} blocks/s   "
          f"({block_s / args.blocks * 1e3:.2f} ms each, with the block's world-state writes)")
    print(f"  a backup's block  {args.blocks / (record_s + block_s):9.0f} blocks/s   "
          f"({per_block:.1f} records + 1 append: {(record_s + block_s) / args.blocks * 1e3:.2f} ms of storage a block)")
    print(f"  reopen            {reopen_s:9.2f} s          ({args.blocks} blocks checked, state rebuilt; "
          f"{size / 1e6:.1f} MB on disk)")


if __name__ == "__main__":
    main()
