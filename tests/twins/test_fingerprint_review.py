"""Review revgap: the Twins search explores a world state reached twice only once, by its
fingerprint, which "errs on the side of detail" (a coarser one prunes unsoundly). O's
entries a replica keeps above its window (``kept_above``, ``deferred``) and the blocks it
fetches for them (``fetching``) are state the rest of a run depends on: two worlds that
differ only there must not be explored as one."""

import pytest

from tests.twins.search import N
from tests.twins.world import Round, Script, World


@pytest.fixture(scope="module")
def after_view_0():
    w = World(Script(N, (), ()))
    w.play_round(Round())
    return w


def _replica(w: World, name: str = "node-03"):
    node = w.nodes[name]
    return getattr(node.replica, "inner", node.replica)


@pytest.mark.parametrize("table", ["kept_above", "deferred", "fetching"])
def test_state_kept_above_the_window_is_in_the_fingerprint(after_view_0, table):
    a, b = after_view_0.clone(), after_view_0.clone()
    r = _replica(b)
    some = next(iter(_replica(a).log.values()), None)
    if table == "kept_above":
        r.kept_above[r.high + 1] = "ab" * 32
    elif table == "deferred":
        assert some is not None and some.pre_prepare is not None
        r.deferred[r.high + 1] = (some.pre_prepare, True)
    else:
        from consensus.replica import BlockFetch
        r.fetching["ab" * 32] = BlockFetch(r.high + 1, "ab" * 32, ("node-00",), None, 0)
    assert a.fingerprint() != b.fingerprint(), f"{table} is not in the Twins world fingerprint"
