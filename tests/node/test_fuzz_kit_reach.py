"""Adversarial review (revbt): the fuzz kit's "valid" envelopes (tests/fuzzkit.py) are
what every mutation starts from. Its pre-prepare's block is dated 10 ns after 1970, and
blocks are now judged at their date, on the calendar: the client's certificate is not yet
valid then, so the node refuses the valid pre-prepare (`bad-request-in-block:
certificate-not-yet-valid`) and every decodable mutation of it the same way, before the
replica sees it. The fuzzing of the replica's pre-prepare handling silently became a
test of one early refusal."""

from __future__ import annotations

from consensus.messages import PrePrepare
from tests.fuzzkit import Kit, feed


def test_the_fuzz_kits_valid_pre_prepare_reaches_the_replica_and_is_taken():
    kit = Kit()
    node = kit.run.nodes[kit.replicas[1]]
    index = next(i for i, env in enumerate(kit.valid) if type(env.message) is PrePrepare)
    seen = []
    replica = node.replica
    original = replica.deliver
    replica.deliver = lambda env, t: seen.append(env) or original(env, t)
    try:
        reason = feed(node, kit.encoded[index])
    finally:
        replica.deliver = original
    assert reason is None and seen, f"the valid pre-prepare was refused before the replica: {reason}"
    assert replica.log[1].pre_prepare is not None, "the replica did not take the valid pre-prepare"
