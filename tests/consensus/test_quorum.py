import pytest

from consensus.quorum import max_faulty, quorum, weak_quorum


@pytest.mark.parametrize("n", range(1, 130))
def test_two_quorums_share_an_honest_replica(n):
    f, q = max_faulty(n), quorum(n)
    assert 3 * f + 1 <= n
    assert 2 * q - n >= f + 1  # intersection holds at least one honest replica
    assert q <= n - f  # a quorum is reachable with f replicas silent


@pytest.mark.parametrize("f", range(0, 30))
def test_quorum_is_2f_plus_1_at_n_3f_plus_1(f):
    assert quorum(3 * f + 1) == 2 * f + 1
    assert weak_quorum(3 * f + 1) == f + 1


def test_quorum_at_the_city_chain_sizes():
    assert (max_faulty(20), quorum(20)) == (6, 14)
    assert (max_faulty(60), quorum(60)) == (19, 40)
