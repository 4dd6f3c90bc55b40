"""BLOCK-REQUEST and BLOCK-REPLY through a node's wire entry point (``Node.on_wire``, the
path of a node process over MQTT): encoded, decoded by node/codec.py, checked by the
node, and handed to the replica, which serves or takes the block."""

from consensus.messages import BlockReply, BlockRequest
from consensus.replica import BlockFetch
from node.codec import decode, encode
from tests.fuzzkit import NOW, Kit, feed


def test_a_block_reply_from_the_wire_completes_a_fetch():
    kit = Kit()
    node = kit.run.nodes[kit.replicas[1]]
    reply = next(env for env in kit.valid if type(env.message) is BlockReply)
    block = reply.message.block
    node.replica.fetching[block.hash] = BlockFetch(block.height, block.hash, (reply.signer,), None)
    assert feed(node, encode(reply)) is None
    assert block.hash not in node.replica.fetching
    assert node.replica.held_block(block.height, block.hash).hash == block.hash
    assert feed(node, encode(reply)) == "unrequested-block"  # once taken, a second copy is not asked for


def test_a_block_request_from_the_wire_is_answered_with_the_block():
    kit = Kit()
    server = kit.run.nodes[kit.replicas[2]]
    reply = next(env for env in kit.valid if type(env.message) is BlockReply)
    block = reply.message.block
    server.replica.fetching[block.hash] = BlockFetch(block.height, block.hash, (reply.signer,), None)
    feed(server, encode(reply))  # now it holds the block
    sent = []
    server.transport.send = lambda src, dst, env, t: sent.append((dst, env))
    asker = kit.replicas[3]
    assert feed(server, encode(kit.sign(asker, BlockRequest(block.height, block.hash))), NOW) is None
    [(dst, env)] = sent
    assert dst == asker and type(env.message) is BlockReply and env.message.block.hash == block.hash
    again = decode(encode(env), kit.chain)  # what the asker's decoder makes of it
    assert again.message.block.hash == block.hash
