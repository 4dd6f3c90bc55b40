"""rev3: the Twins search with the shared-memory invariants checked after every round of
every explored script (issue 13, branch perf): each replica's 'executed' answer is its
own ledger's requests (the index is shared by every replica of a world, and cloned
worlds restart replicas through the original world's factory), and each node's state
is what replaying its own ledger without the memo gives."""

import pytest

from tests.citychain.test_shared_memory import _check_done_is_own_ledger, _check_states_untouched
from tests.twins.search import byzantine_choices, explore
from tests.twins.world import Cut, World

N0 = "node-00"


@pytest.fixture
def checked(monkeypatch):
    rounds = {"n": 0}
    real = World.play_round

    def play_round(self, r):
        out = real(self, r)
        rounds["n"] += 1
        _check_done_is_own_ledger(self.run)
        if rounds["n"] % 5 == 0:
            _check_states_untouched(self.run)
        return out

    monkeypatch.setattr(World, "play_round", play_round)
    return rounds


@pytest.mark.parametrize("choice", [2, 9, 15, 24, 31], ids=lambda i: f"choice{i}")
def test_byzantine_slice_keeps_each_replicas_executed_ids_its_own(choice, checked):
    choices = byzantine_choices()
    report = explore(choices[choice % len(choices)], Cut("iso", N0), slice_every=17, offset=choice)
    assert checked["n"] > 0
    assert not report.failures, [f"{o.script.describe()}: {o.detail}" for o in report.failures[:5]]


def test_honest_slice_with_restarts_keeps_each_replicas_executed_ids_its_own(checked):
    report = explore((), Cut("iso", N0), slice_every=700, offset=3)
    assert checked["n"] > 0 and report.scripts > 50
    assert not report.failures, [f"{o.script.describe()}: {o.detail}" for o in report.failures[:5]]
