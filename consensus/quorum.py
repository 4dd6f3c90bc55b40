"""Quorum arithmetic, in one place.

PBFT is stated for n = 3f + 1, where a quorum of 2f + 1 guarantees that any two
quorums share at least f + 1 replicas (so at least one honest one). For other n
(20 or 60 nodes, say) 2f + 1 is *not* enough: with n = 20, f = 6, two sets of 13
overlap in only 6 replicas, all of which may be faulty. The general rule is a
quorum of ceil((n + f + 1) / 2), which equals 2f + 1 exactly when n = 3f + 1.
"""


def max_faulty(n: int) -> int:
    """f: the most Byzantine replicas n replicas tolerate (n >= 3f + 1)."""
    if n < 1:
        raise ValueError(f"a chain needs at least one replica, got n={n}")
    return (n - 1) // 3


def quorum(n: int) -> int:
    """Smallest set size such that any two sets intersect in >= f + 1 replicas."""
    f = max_faulty(n)
    return (n + f + 2) // 2  # ceil((n + f + 1) / 2)


def weak_quorum(n: int) -> int:
    """f + 1: enough to contain at least one honest replica."""
    return max_faulty(n) + 1
