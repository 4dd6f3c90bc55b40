"""Adversarial review (rev1) of the decoder limits (branch fuzz): a state-transfer answer.

Finding C4: a peer answers a FETCH with up to BATCH (50) blocks and their certificates
in one BLOCKS message (node/sync.py), whatever their size, and the decoder refuses a
message over MAX_MESSAGE_BYTES (64 MiB) before parsing it. Blocks of more than about
1.3 MB (block_size 1,000 of 1.4 KB requests; or block_size 10,000 of ordinary 200-byte
ones: 2 MB) make every full answer oversized: every peer sends the same batch, so a
node process that fell behind never catches up (liveness). Fixed: the answer holds
blocks up to a byte budget (at least one), ``node.sync.answer``.
"""

from __future__ import annotations

from consensus.block import Block, BlockHeader, tx_root
from consensus.messages import Commit, Request
from node.codec import MalformedMessage, decode, encode
from node.sync import BATCH, answer
from node.sync_messages import Blocks

from tests.consensus.harness import CHAIN, GENESIS, ROOT0, Net


class _Entry:
    def __init__(self, block, certificate):
        self.block, self.certificate = block, certificate


def test_a_full_state_transfer_answer_of_ordinary_blocks_decodes():
    net = Net(4)
    s = net.signers
    requests = tuple(net.client.sign(Request(i, "evidence", "store", {"doc": "x" * 1_300}, 1)) for i in range(1_000))
    root = tx_root(requests)
    entries, prev = [], GENESIS
    for height in range(1, BATCH + 1):
        header = BlockHeader(CHAIN, height, prev, root, ROOT0, 0, "r0", height)
        block = Block(header, requests, header.compute_hash())
        cert = tuple(s[r].sign(Commit(0, height, block.hash)) for r in ("r0", "r1", "r2"))
        entries.append(_Entry(block, cert))
        prev = block.hash
    answered, size = answer(entries, 1, BATCH)
    assert size <= len(encode(s["r1"].sign(Blocks(answered)))) + 1024 * len(answered)  # the size it measured
    assert answered and [b.height for b, _ in answered] == list(range(1, len(answered) + 1))
    raw = encode(s["r1"].sign(Blocks(answered)))
    reason = None
    try:
        decode(raw, CHAIN)
    except MalformedMessage as exc:
        reason = exc.reason
    assert reason is None, (reason, len(raw))
