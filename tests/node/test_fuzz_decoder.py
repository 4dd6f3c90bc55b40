"""Hostile bytes at a node's receive entry point (issue 12): nothing escapes as an
exception, every refusal is counted under a reason docs/messages.md names (never the
decoder's catch-all ``decode-error``), and a chain fed fuzz still commits.

Fast and deterministic (derandomized); the long run is benchmarks/fuzz_decoder.py
(docs/testing.md)."""

import hashlib
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.encoding import canonical
from node.codec import HEADER, MalformedMessage, decode
from tests.fuzzkit import (FAMILIES, NASTY, Kit, _paths, _replace, byte_mutation, documented_reasons, feed, huge,
                           hostile, resign, run_fuzzed_chain)

FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DOCUMENTED = documented_reasons()
KIT = Kit()
NODE = KIT.run.nodes[KIT.replicas[1]]
KINDS = [json.loads(json.loads(raw)["data"])["type"] for raw in KIT.encoded]


def refused_or_handed_on(raw: bytes) -> str | None:
    """Feed ``raw``; no exception may escape, and a refusal is a named, documented reason."""
    reason = feed(NODE, raw)
    assert reason is None or reason.split(":")[0] in DOCUMENTED, f"{reason!r} is not in docs/messages.md"
    assert reason != "decode-error", "an input met no named check in the decoder"
    return reason


def test_the_kit_holds_a_valid_encoding_of_every_kind():
    assert sorted(KINDS) == sorted(["request", "pre-prepare", "prepare", "commit", "checkpoint", "view-change",
                                    "view-change", "new-view", "new-view-request", "fetch", "blocks",
                                    "block-request", "block-reply"])
    for raw in KIT.encoded:
        decode(raw, KIT.chain)


@FAST
@given(st.binary(max_size=4096))
def test_random_bytes_are_refused_with_a_reason(raw):
    assert refused_or_handed_on(raw) is not None


@FAST
@given(st.sampled_from(range(len(KIT.encoded))), st.data())
def test_truncated_encodings_are_refused(index, data):
    raw = KIT.encoded[index]
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert refused_or_handed_on(raw[:cut]) is not None


@FAST
@given(st.sampled_from(range(len(KIT.encoded))), st.randoms(use_true_random=False))
def test_byte_mutated_encodings_never_escape(index, rng):
    refused_or_handed_on(byte_mutation(KIT.encoded[index], rng))


def tree_paths(obj):
    return [p for p, _ in _paths(obj)]


@FAST
@given(st.sampled_from(range(len(KIT.encoded))), st.data(), st.sampled_from(NASTY))
def test_any_envelope_field_of_any_type_never_escapes(index, data, value):
    obj = json.loads(KIT.encoded[index])
    path = data.draw(st.sampled_from(tree_paths(obj)))
    refused_or_handed_on(json.dumps(_replace(obj, path, value)).encode())


@FAST
@given(st.sampled_from(range(len(KIT.encoded))), st.data(), st.sampled_from(NASTY))
def test_validly_signed_nonsense_bodies_never_escape(index, data, value):
    """A body field replaced by any value, then signed by a real member's key."""
    obj = json.loads(KIT.encoded[index])
    body = json.loads(obj["data"])
    path = data.draw(st.sampled_from([p for p in tree_paths(body) if p]))
    refused_or_handed_on(resign(KIT, obj, _replace(body, path, value)))


@FAST
@given(st.randoms(use_true_random=False), st.sampled_from(FAMILIES[:-1]))
def test_every_family_of_hostile_input_never_escapes(rng, family):
    refused_or_handed_on(hostile(KIT, rng, family)[1])


def signed_pre_prepare_with_header(field: str, value) -> bytes:
    """What a Byzantine primary could send: a header field of the wrong type, the block
    hash recomputed over it and the PRE-PREPARE validly signed by the primary."""
    obj = json.loads(KIT.encoded[1])
    header = dict(obj["block"]["header"], **{field: value})
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    obj["block"] = dict(obj["block"], header=header, hash=digest)
    body = dict(json.loads(obj["data"]), digest=digest)
    return resign(KIT, obj, body, signer=KIT.replicas[0])


WRONG_TYPES = {"integer": [10.0, 1.5, "1", True, None, [1], {}], "digest": [1, None, ["ab" * 32], True],
               "name": [1, None, True, ["node-00"]], "chain id": [1, None, False, {}]}
BAD_VALUES = {"integer": [-1, 2**63], "digest": ["AB" * 32, "ab" * 31, "g" * 64, ""], "name": ["", "n" * 65],
              "chain id": ["", "c" * 257]}


@pytest.mark.parametrize("field", sorted(HEADER))
def test_a_header_field_of_the_wrong_type_is_refused_as_wrong_type(field):
    for value in WRONG_TYPES[HEADER[field]]:
        raw = signed_pre_prepare_with_header(field, value)
        with pytest.raises(MalformedMessage) as err:
            decode(raw, KIT.chain)
        assert err.value.reason == "wrong-type", (field, value)
        assert feed(NODE, raw) == "wrong-type"
    for value in BAD_VALUES[HEADER[field]]:
        with pytest.raises(MalformedMessage) as err:
            decode(signed_pre_prepare_with_header(field, value), KIT.chain)
        assert err.value.reason == "bad-field", (field, value)


def test_a_float_timestamp_never_reaches_the_replica():
    """The review's case: a header's timestamp 10.0 hashes and signs fine, but is not an integer."""
    raw = signed_pre_prepare_with_header("timestamp", 11.0)
    seen = []
    replica = NODE.replica
    original = replica.deliver
    replica.deliver = lambda env, t: seen.append(env) or original(env, t)
    try:
        assert feed(NODE, raw) == "wrong-type"
    finally:
        replica.deliver = original
    assert seen == []


def test_missing_and_unknown_fields_are_named():
    obj = json.loads(KIT.encoded[2])  # a prepare
    body = json.loads(obj["data"])
    assert feed(NODE, resign(KIT, obj, {k: v for k, v in body.items() if k != "seq"})) == "missing-field"
    assert feed(NODE, resign(KIT, obj, dict(body, extra=1))) == "unknown-field"


@pytest.mark.parametrize("kind,reason", [(0, "oversized"), (1, "block-too-large"), (2, "block-too-large"),
                                         (3, "too-many-items"), (4, "too-many-items"), (5, "malformed")])
def test_huge_lengths_and_counts_are_refused_with_their_own_reason(kind, reason):
    class Fixed(random.Random):
        def randrange(self, *args):
            return kind if args == (6,) else super().randrange(*args)

        def choice(self, seq):
            return seq[-1] if seq == [100, 10_000, 100_000] else super().choice(seq)

    assert feed(NODE, huge(KIT, Fixed(1))) == reason


def test_the_message_size_is_checked_before_parsing(monkeypatch):
    import node.codec as codec
    monkeypatch.setattr(codec, "MAX_MESSAGE_BYTES", len(KIT.encoded[0]) - 1)
    monkeypatch.setattr(codec.json, "loads", lambda *_: pytest.fail("parsed an oversized message"))
    assert feed(NODE, KIT.encoded[0]) == "oversized"


def test_a_chain_fed_fuzz_at_one_node_still_commits():
    heights, fed = run_fuzzed_chain(seed=7, per_delivery=5, transactions=300)
    assert fed > 1000
    assert len(set(heights.values())) == 1 and min(heights.values()) >= 3


def test_valid_encodings_are_canonical():
    for raw in KIT.encoded:
        assert canonical(json.loads(raw)) == raw


def test_a_block_reply_is_bound_to_its_digest_and_its_header():
    """BLOCK-REPLY (docs/messages.md, "Blocks by digest"): its block must hash to the
    signed digest, and its requests must match the header's tx_root."""
    obj = json.loads(KIT.encoded[-1])
    assert json.loads(obj["data"])["type"] == "block-reply"
    other = json.loads(KIT.encoded[-1])
    body = dict(json.loads(other["data"]), digest="ab" * 32)  # a digest its block does not hash to
    assert feed(NODE, resign(KIT, other, body)) == "malformed"  # no block attached under that digest
    tampered = json.loads(KIT.encoded[-1])
    tampered["block"]["txs"] = []  # the header (and so the hash) kept, its requests gone
    assert feed(NODE, canonical(tampered)) == "bad-tx-root"


def test_pre_prepares_inside_a_new_view_name_their_blocks_by_digest():
    new_view = next(raw for raw in KIT.encoded if json.loads(json.loads(raw)["data"])["type"] == "new-view")
    obj = json.loads(new_view)
    assert "blocks" not in obj
    env = decode(new_view, KIT.chain)
    assert all(p.message.block is None for p in env.message.pre_prepares)
    assert all(proof.pre_prepare.message.block is None
               for vc in env.message.view_changes for proof in vc.message.prepared)
    pre = json.loads(KIT.encoded[1])
    del pre["block"]  # sent on its own, a PRE-PREPARE must carry its block
    assert feed(NODE, canonical(pre)) == "malformed"
