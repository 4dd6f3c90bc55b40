"""rev3: the shared executed-request index against a model (a plain set per replica),
under random interleavings of forks (blocks that share, nest or repeat request sets),
restarts (a replica rebuilt from its own ledger into a fresh view over the same index)
and replicas that lag (never told of a block others executed)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.executed import ExecutedIndex

RIDS = [f"r{i}" for i in range(12)]

blocks = st.frozensets(st.sampled_from(RIDS), max_size=5)
ops = st.lists(st.one_of(
    st.tuples(st.just("exec"), st.integers(0, 3), blocks),
    st.tuples(st.just("exec-list"), st.integers(0, 3), blocks),
    st.tuples(st.just("restart"), st.integers(0, 3), st.just(frozenset())),
), max_size=60)


class _Archive:
    """What an archive must do (node/history.py ``ExecutedArchive`` does it in a store)."""

    def __init__(self):
        self.blocks = []

    def add(self, blocks):
        self.blocks += [(ids, set(holders)) for ids, holders in blocks]

    def holds(self, rid, replica):
        return any(rid in ids and replica in holders for ids, holders in self.blocks)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(ops, st.sampled_from([None, 1, 2]))
def test_each_view_answers_as_its_own_set(program, recent):
    """``recent``: None, no archive; else an archive taking all but the last 1..2 x recent blocks."""
    index = ExecutedIndex() if recent is None else ExecutedIndex(_Archive(), recent=recent)
    ledgers = [[] for _ in range(4)]  # what each replica executed, in order (its ledger)
    views = [index.executed() for _ in range(4)]
    for op, who, ids in program:
        if op == "exec":
            views[who] |= ids
            ledgers[who].append(ids)
        elif op == "exec-list":
            views[who].update(sorted(ids))  # not a frozenset: converted, equal sets shared
            ledgers[who].append(ids)
        else:  # crash and restart from its own ledger
            views[who] = index.executed()
            for b in ledgers[who]:
                views[who] |= b
        for i in range(4):
            model = set().union(*ledgers[i]) if ledgers[i] else set()
            assert {r for r in RIDS if r in views[i]} == model, (i, program)
