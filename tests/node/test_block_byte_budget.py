"""Adversarial review (rev1) of the decoder limits of issue 12 (branch fuzz).

Finding C1: the primary fills a block with up to ``block_size`` requests, whatever
their size, and nothing bounds a request's size but the 64 MiB message limit; the
decoder refuses any block whose requests' signed bytes exceed MAX_BLOCK_BYTES (16 MiB)
as ``block-too-large``. So a proposal an honest primary makes is refused by every
node process:
- at block_size 10,000 (a valid configuration) with requests of 1.7 KB, a legitimate load;
- at any block_size, with one request of 17 MiB that a faulty client submitted (a valid
  REQUEST message: under 64 MiB). It stays first in every replica's pending requests,
  so every primary in turn proposes a block holding it, every backup refuses it, and
  the chain stops for good (a liveness failure caused by one client).
"""

from __future__ import annotations

from consensus.effects import Broadcast
from consensus.events import Receive
from consensus.messages import PrePrepare, Request
from node.codec import MAX_BLOCK_BYTES, MalformedMessage, decode, encode
from node.identity import derive_key
from node.signing import Signer

from tests.consensus.harness import CHAIN, Net


def _proposal(net: Net, requests) -> bytes:
    """What the primary r0 broadcasts once it holds ``requests``, encoded for the wire."""
    primary = net.replicas["r0"]
    effects = []
    for env in requests:
        effects += primary.step(Receive(0, env))
    proposals = [e.message for e in effects if type(e) is Broadcast and type(e.message) is PrePrepare]
    assert proposals, effects
    return encode(net.signers["r0"].sign(proposals[0]))


def _refused(raw: bytes) -> str | None:
    try:
        decode(raw, CHAIN)
    except MalformedMessage as exc:
        return exc.reason
    return None


def test_an_honest_primarys_full_block_of_ordinary_requests_decodes():
    """block_size 10,000 (the largest the scenario allows), each request 1.7 KB of args."""
    net = Net(4, block_size=10_000, max_pending=20_000)
    blob = "x" * 1_700
    # Four clients: one may hold at most a quarter of the pool (mempool-client-full).
    clients = [Signer(f"client{k}", derive_key(0, CHAIN, f"client{k}"), CHAIN) for k in range(4)]
    requests = [clients[i % 4].sign(Request(i, "evidence", "store", {"doc": blob}, i)) for i in range(10_000)]
    assert sum(len(r.data) for r in requests) > MAX_BLOCK_BYTES
    assert _refused(_proposal(net, requests)) is None


def test_one_large_request_from_a_faulty_client_does_not_make_every_proposal_undecodable():
    """A 17 MiB request (a valid REQUEST: under the 64 MiB message limit) would be taken
    into the next block, and every backup process would refuse that block, so no block
    would commit again. It is refused on arrival (no block could hold it), and the
    primary's next proposal decodes."""
    net = Net(4, block_size=1)
    big = net.client.sign(Request(1, "evidence", "store", {"doc": "y" * (17 * 1024 * 1024)}, 1))
    assert _refused(encode(big)) is None  # the request itself is accepted from the wire
    small = net.client.sign(Request(2, "evidence", "store", {"doc": "z"}, 2))
    refused = [e.reason for e in net.replicas["r0"].step(Receive(0, big))]
    assert refused == ["oversized-request"]
    assert _refused(_proposal(net, [small])) is None
