"""Review of blocks by digest: what an unrequested BLOCK-REPLY costs a node.

A faulty member may send BLOCK-REPLYs nobody asked for, each with a block of many
validly signed requests (old ones, replayed from the chain or the mempool). The replica
refuses them (`unrequested-block`), but the node checked every request's signature
first: R verifications for one message, at the sender's full admission rate."""

from consensus.block import Block, BlockHeader, tx_root
from consensus.messages import BlockReply, Request
from consensus.replica import BlockFetch
from node.codec import encode
from tests.fuzzkit import Kit, feed


def _reply(kit: Kit, node, signer: str, count: int, base: int):
    reqs = tuple(kit.sign(kit.client, Request(base + i, "records", "put", {"key": f"k{base + i}"}, 5))
                 for i in range(count))
    header = BlockHeader(kit.chain, 1, node.ledger.head_hash, tx_root(reqs), node.executor.state.root(), 0,
                         kit.replicas[0], 10)
    block = Block.create(header, reqs)
    return kit.sign(signer, BlockReply(block.hash, block))


def test_an_unrequested_block_reply_costs_one_verification_not_one_per_request():
    kit = Kit()
    node = kit.run.nodes[kit.replicas[1]]
    flood = _reply(kit, node, kit.replicas[3], 100, 1000)
    before = node.metrics.cpu_ns[node.id]
    assert feed(node, encode(flood)) == "unrequested-block"
    cost = node.metrics.cpu_ns[node.id] - before
    assert cost <= 2 * node.cpu.verify, f"{cost // node.cpu.verify} verifications for a block nobody asked for"


def test_a_requested_block_reply_is_still_checked_in_full():
    kit = Kit()
    node = kit.run.nodes[kit.replicas[1]]
    reply = _reply(kit, node, kit.replicas[3], 20, 3000)
    block = reply.message.block
    node.replica.fetching[block.hash] = BlockFetch(1, block.hash, (kit.replicas[3],), None)
    before = node.metrics.cpu_ns[node.id]
    assert feed(node, encode(reply)) is None
    assert node.metrics.cpu_ns[node.id] - before >= 20 * node.cpu.verify
    assert node.replica.held_block(1, block.hash) is block or node.replica.held_block(1, block.hash).hash == block.hash


def test_a_requested_block_reply_over_block_size_is_refused_before_its_requests_are_checked():
    """A BLOCK-REPLY carries a block as a PRE-PREPARE does: more than block_size requests
    is more than any proposal holds, refused (oversized-block) before one is checked."""
    kit = Kit()
    node = kit.run.nodes[kit.replicas[1]]
    reply = _reply(kit, node, kit.replicas[3], node.replica.config.block_size + 1, 5000)
    block = reply.message.block
    node.replica.fetching[block.hash] = BlockFetch(1, block.hash, (kit.replicas[3],), None)
    before = node.metrics.cpu_ns[node.id]
    assert feed(node, encode(reply)) == "oversized-block"
    assert node.metrics.cpu_ns[node.id] - before <= 2 * node.cpu.verify
