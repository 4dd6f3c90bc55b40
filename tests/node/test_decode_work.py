"""Adversarial review (rev1) of the decoder (branch fuzz): work bounded by the input?

Finding C3: decoding an envelope computes its ``wire_size``, and for a VIEW-CHANGE or
NEW-VIEW that re-encodes every attachment it carries, blocks included. Embedded
VIEW-CHANGEs inside a NEW-VIEW are each decoded this way, before any signature is
checked, while the message attaches each block once. So one message of K small
VIEW-CHANGE envelopes that all name the same pre-prepare, with one large block
attached, makes the decoder encode that block K times: a message of about 1 MiB here
costs 200 MiB of JSON encoding; at the limits (a 16 MiB block, 100,000 envelopes in a
64 MiB message) it is terabytes, from any member (or anyone whose bytes reach the
decoder), refused only after all that work.
"""

from __future__ import annotations

import node.codec as codec
from consensus.block import Block, BlockHeader, tx_root
from consensus.messages import NewView, PrePrepare, PreparedProof, Request, ViewChange

from tests.consensus.harness import CHAIN, GENESIS, ROOT0, Net


def test_decoding_a_new_view_encodes_each_attached_block_a_bounded_number_of_times(monkeypatch):
    net = Net(4)
    s = net.signers
    requests = tuple(net.client.sign(Request(i, "evidence", "store", {"doc": "x" * 10_000}, 1)) for i in range(100))
    header = BlockHeader(CHAIN, 1, GENESIS, tx_root(requests), ROOT0, 0, "r0", 1)
    block = Block(header, requests, header.compute_hash())  # about 1 MiB
    pp = s["r0"].sign(PrePrepare(0, 1, block.hash, block))
    k = 200
    vcs = tuple(s["r1"].sign(ViewChange(v, 0, (), (PreparedProof(pp, ()),))) for v in range(1, k + 1))
    raw = codec.encode(s["r1"].sign(NewView(1, vcs, ())))
    calls = [0]
    original = codec.block_dict

    def counting(b):
        calls[0] += 1
        return original(b)

    monkeypatch.setattr(codec, "block_dict", counting)
    codec.decode(raw, CHAIN)
    # The block is attached once; decoding may look at it a few times, not once per
    # VIEW-CHANGE that names it.
    assert calls[0] <= 4, f"a {len(raw)}-byte message made the decoder encode its block {calls[0]} times"
