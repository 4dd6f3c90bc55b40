"""Commit certificates (node/checker.py): a quorum of distinct consensus members, each once."""

from consensus.messages import Commit
from node.checker import ChainChecker
from tests.fuzzkit import Kit

KIT = Kit()
R = KIT.replicas
BLOCK = KIT.valid[1].message.block  # height 1, on the genesis


def checker() -> ChainChecker:
    run = KIT.run
    return ChainChecker(run.membership, run.genesis.hash, set(R))


def commits(*signers, view=0):
    return tuple(KIT.sign(s, Commit(view, 1, BLOCK.hash)) for s in signers)


def test_a_quorum_of_distinct_signers_is_a_certificate():
    assert checker().check([(BLOCK, commits(R[0], R[1], R[2]))]) == []


def test_the_same_commit_twice_does_not_make_a_quorum():
    c = commits(R[0], R[1])
    problems = checker().check_certificate(BLOCK, c + c[:1])
    assert problems == [f"certificate names {R[0]} twice"]


def test_a_certificate_naming_a_signer_twice_is_refused_even_beside_a_quorum():
    """Refused, not deduplicated: an honest replica never builds one (one COMMIT per
    signer), and a certificate keeps one spelling."""
    c = commits(R[0], R[1], R[2])
    assert checker().check_certificate(BLOCK, c + c[2:]) == [f"certificate names {R[2]} twice"]


def test_two_different_commits_from_one_signer_count_once():
    twice = commits(R[0], R[1]) + commits(R[1], view=1)
    problems = checker().check_certificate(BLOCK, twice)
    assert problems == [f"certificate names {R[1]} twice"]


def test_too_few_distinct_signers_is_refused():
    assert checker().check_certificate(BLOCK, commits(R[0], R[1])) == [
        "certificate has 2 distinct signers, a quorum is 3"]
