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


def test_the_two_new_views_behaviour_builds_its_second_new_view_by_digest():
    """node/byzantine.py TwoNewViews built its second NEW-VIEW from ``_compute_o``'s O as
    if O were blocks (``b.height``); O is pre-prepares naming blocks by digest, and the
    first script where O was not empty raised AttributeError (found in review revnp)."""
    choices = [c for c in byzantine_choices() if dict(c)["behaviour"] == "two-new-views"]
    assert choices
    report = explore(choices[0], Cut("iso", N0), slice_every=9)
    assert not report.failures, [f"{o.script.describe()}: {o.detail}" for o in report.failures[:5]]
