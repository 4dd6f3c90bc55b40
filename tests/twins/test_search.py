"""The systematic search in CI: a fixed slice of the space (the whole space is a
documented command, docs/testing.md), and a check that the space holds the known attacks."""

import pytest

from tests.twins.search import byzantine_choices, explore
from tests.twins.world import Cut

N0 = "node-00"


@pytest.mark.parametrize("choice", [0, 1, 7, 20], ids=lambda i: f"choice{i}")
def test_a_slice_of_the_byzantine_space_is_safe_and_live(choice):
    byzantine = byzantine_choices()[choice]
    report = explore(byzantine, Cut("iso", N0), slice_every=9, offset=choice)
    assert report.scripts > 100
    assert not report.failures, [f"{o.script.describe()}: {o.detail}" for o in report.failures[:5]]


@pytest.mark.parametrize("sync", [None, N0], ids=["no-sync-cut", "sync-iso-node-00"])
def test_a_slice_of_the_honest_space_is_safe_and_live(sync):
    report = explore((), Cut("iso", sync) if sync else None, slice_every=1500, offset=7)
    assert report.scripts > 50
    assert not report.failures, [f"{o.script.describe()}: {o.detail}" for o in report.failures[:5]]
