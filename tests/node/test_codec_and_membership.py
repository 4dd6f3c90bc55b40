"""Wire encoding round trips, and malformed, forged and unauthorised messages are refused."""

import json
from dataclasses import replace

import pytest

from consensus.block import Block, BlockHeader, tx_root
from consensus.messages import Checkpoint, Commit, PrePrepare, Prepare, Request
from node.codec import MalformedMessage, decode, encode
from node.identity import CertificateAuthority, derive_key
from node.membership import Membership
from node.signing import Signer

CHAIN = "unit"
D = "ab" * 32


@pytest.fixture(scope="module")
def world():
    ca = CertificateAuthority(CHAIN, "Unit Chain", derive_key(1, CHAIN, "ca"))
    members, signers = {}, {}
    for ident, role in [("node-00", "consensus"), ("node-01", "consensus"), ("obs-00", "observer"),
                        ("client-00", "client")]:
        key = derive_key(1, CHAIN, ident)
        ca.issue(ident, "org", role, key.public_key())
        members[ident] = (key.public_key(), "org", role)
        signers[ident] = Signer(ident, key, CHAIN)
    return Membership(CHAIN, members), signers


def a_block(signers):
    req = signers["client-00"].sign(Request(1, "records", "put", {"key": "k", "value": "v"}, 5))
    header = BlockHeader(CHAIN, 1, "00" * 32, tx_root((req,)), "11" * 32, 0, "node-00", 9)
    return Block.create(header, (req,))


def all_messages(signers):
    block = a_block(signers)
    return [
        signers["client-00"].sign(Request(7, "records", "put", {"key": "k", "value": "v"}, 1)),
        signers["node-00"].sign(PrePrepare(0, 1, block.hash, block)),
        signers["node-01"].sign(Prepare(0, 1, D)),
        signers["node-01"].sign(Commit(0, 1, D)),
        signers["node-01"].sign(Checkpoint(10, D, D)),
    ]


def test_every_message_round_trips_and_size_is_its_wire_length(world):
    membership, signers = world
    for env in all_messages(signers):
        raw = encode(env)
        assert env.size == len(raw)
        back = decode(raw, CHAIN)
        assert back.message == env.message or isinstance(env.message, PrePrepare)
        assert back.data == env.data and back.signature == env.signature and back.digest == env.digest
        assert membership.authenticate(back) is None


@pytest.mark.parametrize("raw,reason", [
    (b"not json", "malformed"),
    (b"[1,2]", "wrong-type"),
    (b'{"data":"{}","sig":"zz"}', "malformed"),
    (b'{"data":"{\\"b\\":1, \\"a\\":2}","sig":"' + b"00" * 64 + b'"}', "not-canonical"),
    (b'{"data":"{\\"chain\\":\\"other\\",\\"signer\\":\\"x\\",\\"type\\":\\"prepare\\"}","sig":"' + b"00" * 64 + b'"}',
     "wrong-chain"),
    (b'{"data":"{\\"chain\\":\\"unit\\",\\"signer\\":\\"x\\",\\"type\\":\\"vote\\"}","sig":"' + b"00" * 64 + b'"}',
     "unknown-type"),
    (b'{"data":"{\\"chain\\":\\"unit\\",\\"digest\\":\\"xy\\",\\"seq\\":1,\\"signer\\":\\"x\\",\\"type\\":\\"prepare\\",'
     b'\\"view\\":0}","sig":"' + b"00" * 64 + b'"}', "bad-field"),
])
def test_malformed_bytes_are_refused_with_a_reason(raw, reason):
    with pytest.raises(MalformedMessage) as err:
        decode(raw, CHAIN)
    assert err.value.reason == reason


@pytest.mark.parametrize("respell", [str.upper, lambda s: s[:64] + " " + s[64:], lambda s: " " + s,
                                     lambda s: s + "\n", lambda s: s[:-2], lambda s: s + "00"])
def test_a_signature_has_one_spelling(world, respell):
    """bytes.fromhex once took upper case and white space: one signature, many envelopes."""
    membership, signers = world
    obj = json.loads(encode(signers["node-01"].sign(Prepare(0, 1, D))))
    obj["sig"] = respell(obj["sig"])
    with pytest.raises(MalformedMessage, match="sig is not 128 lower-case hex digits") as err:
        decode(json.dumps(obj).encode(), CHAIN)
    assert err.value.reason == "malformed"


def test_nesting_too_deep_for_the_parser_is_malformed_not_a_crash():
    with pytest.raises(MalformedMessage):
        decode(b"[" * 200_000 + b"]" * 200_000, CHAIN)
    data = json.dumps("[" * 200_000 + "]" * 200_000)
    with pytest.raises(MalformedMessage):
        decode(('{"data":' + data + ',"sig":"' + "00" * 64 + '"}').encode(), CHAIN)


def test_a_block_whose_transactions_were_swapped_is_refused(world):
    _, signers = world
    pre = signers["node-00"].sign(PrePrepare(0, 1, a_block(signers).hash, a_block(signers)))
    obj = json.loads(encode(pre))
    other = signers["client-00"].sign(Request(2, "records", "put", {"key": "x", "value": "y"}, 5))
    obj["block"]["txs"] = [json.loads(encode(other))]
    with pytest.raises(MalformedMessage) as err:
        decode(json.dumps(obj).encode(), CHAIN)
    assert err.value.reason == "bad-tx-root"


def test_forged_signature_unknown_signer_and_wrong_role_are_refused(world):
    membership, signers = world
    good = signers["node-01"].sign(Prepare(0, 1, D))
    forged = replace(good, signature=bytes(64))
    assert membership.authenticate(forged) == "bad-signature"
    stranger = Signer("node-99", derive_key(1, CHAIN, "node-99"), CHAIN).sign(Prepare(0, 1, D))
    assert membership.authenticate(stranger) == "unknown-signer"
    assert membership.authenticate(signers["client-00"].sign(Prepare(0, 1, D))) == "unauthorised-role"
    assert membership.authenticate(signers["obs-00"].sign(Commit(0, 1, D))) == "unauthorised-role"
    assert membership.authenticate(signers["node-00"].sign(Request(1, "records", "put", {}, 1))) == "unauthorised-role"
    # Someone else's valid signature stapled to a different message:
    swapped = replace(good, message=Prepare(0, 2, D))
    assert membership.authenticate(swapped) == "body-mismatch"


def test_each_envelope_is_verified_once(world):
    membership, signers = world
    env = signers["node-00"].sign(Commit(3, 3, D))
    before = membership.verifications
    for _ in range(50):
        assert membership.authenticate(env) is None
    assert membership.verifications == before + 1


def test_a_process_remembers_signatures_by_content_but_still_checks_the_body(world):
    """A node process decodes a new object per copy: the second copy's signature is not
    verified again, but an envelope pairing that signature and data with another message
    (a Byzantine replay of a good signature) is refused, and so is a bad signature."""
    members, signers = world
    membership = Membership(CHAIN, members.members, cache_limit=100)
    env = signers["node-00"].sign(Commit(3, 3, D))
    copy = replace(env)  # another object, same content: what decoding a second copy gives
    assert membership.authenticate(env) is None and membership.authenticate(copy) is None
    assert membership.verifications == 1
    lying = replace(env, message=Commit(3, 4, D))
    assert membership.authenticate(lying) == "body-mismatch"
    assert membership.authenticate(replace(env, signature=bytes(64))) == "bad-signature"
    other_signer = replace(env, signer="node-01")
    assert membership.authenticate(other_signer) == "body-mismatch"  # its data names node-00
