"""consensus/executed.py: a shared index of executed request ids answers exactly as
each replica's own set would, also when replicas executed different blocks (a fork)."""

import random

from consensus.executed import ExecutedIndex


def test_shared_index_answers_as_a_plain_set_per_replica():
    rng = random.Random(7)
    index = ExecutedIndex()
    replicas = [(set(), index.executed()) for _ in range(4)]
    rids = [f"r{i}" for i in range(60)]
    for _ in range(40):
        block = frozenset(rng.sample(rids, rng.randint(0, 6)))  # blocks may repeat ids (forks, replays)
        for plain, shared in rng.sample(replicas, rng.randint(1, 4)):
            plain |= block
            shared |= block
    for plain, shared in replicas:
        assert {r for r in rids if r in shared} == plain
        assert "unknown" not in shared


def test_restore_with_update_equals_executing_the_blocks():
    index = ExecutedIndex()
    a, b = index.executed(), index.executed()
    a |= frozenset({"x", "y"})
    b.update(["x", "y"])
    b.update(iter(["z"]))
    assert "x" in b and "z" in b and "z" not in a
