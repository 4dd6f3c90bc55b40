"""Ledgers spilled to their run's HistoryStore (node/history.py) read back, export and
summarise exactly as ledgers held whole in memory."""

from __future__ import annotations

import pytest

from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from citychain.summary import audit_run, summarize

WHOLE = 10**9  # a window no run reaches: nothing spills


def _runs(name: str):
    scenario = load_scenario(name)
    return simulate(scenario, history_window=WHOLE), simulate(scenario, history_window=1)


def _summary(run) -> dict:
    out = summarize(run, "x", audit_run(run))
    out.pop("wall_seconds")
    return out


@pytest.mark.parametrize("name", ["catch-up-4", "fork-4", "view-change-4"])
def test_a_spilled_run_summarises_and_exports_as_one_held_in_memory(name, tmp_path):
    # catch-up-4: node-3 crashes, keeps its ledger (spilled part included), recovers
    # from it and fetches the blocks it missed from peers whose answers are read back
    # from the store; fork-4: forked chains spill side by side.
    whole, spilled = _runs(name)
    assert name == "fork-4" or any(n.ledger.entries.spilled for n in spilled.nodes.values())  # fork-4: 2 blocks
    assert _summary(whole) == _summary(spilled)
    for nid in whole.nodes:
        whole.nodes[nid].ledger.export(tmp_path / f"{nid}.a")
        spilled.nodes[nid].ledger.export(tmp_path / f"{nid}.b")
        assert (tmp_path / f"{nid}.a").read_bytes() == (tmp_path / f"{nid}.b").read_bytes()


def test_spilled_entries_index_and_slice_as_a_list():
    whole, spilled = _runs("catch-up-4")
    for nid in whole.nodes:
        a, b = whole.nodes[nid].ledger.entries, spilled.nodes[nid].ledger.entries
        assert b.spilled and len(a) == len(b)
        key = lambda e: (e.block.hash, tuple(c.signature for c in e.certificate), e.receipts)  # noqa: E731
        assert [key(e) for e in a] == [key(e) for e in b]
        n = len(a)
        for i in (0, 1, n // 2, n - 1, -1, -n):
            assert key(a[i]) == key(b[i])
        for lo, hi in ((0, n), (1, 3), (n - 3, n + 5), (n // 2, n // 2), (5, 2), (-4, None), (None, -2)):
            assert [key(e) for e in a[lo:hi]] == [key(e) for e in b[lo:hi]]
        with pytest.raises(IndexError):
            b[n]


def test_per_transaction_records_read_as_the_dicts_they_replace():
    from types import SimpleNamespace

    from node.history import HistoryStore, SubmittedTimes, TxBlocks

    store = HistoryStore("chain")
    times, plain = SubmittedTimes(store), {}
    for tx, at in (("b", 5), ("a", 7), ("c", 1), ("a", 9)):  # a again: its value changes, not its place
        times[tx] = at
        plain[tx] = at
    assert list(times.items()) == list(plain.items()) and list(times) == list(plain) and len(times) == 3
    assert times.get("a") == 9 and times.get("z") is None and times.get("z", 0) == 0
    assert "c" in times and "z" not in times
    blocks = TxBlocks(store)
    request = lambda d: SimpleNamespace(digest=d)  # noqa: E731
    blocks.add_block(SimpleNamespace(hash="h1", requests=[request("a"), request("b")]))
    blocks.add_block(SimpleNamespace(hash="h2", requests=[request("a")]))  # a fork carried a twice
    assert blocks.get("a") == ["h1", "h2"] and blocks.get("b") == ["h1"] and blocks.get("z", ()) == ()
    assert dict(blocks.items()) == {"a": ["h1", "h2"], "b": ["h1"]}
    directory = store.directory
    store.close()
    assert not directory.exists()


def test_a_copied_world_spills_on_its_own():
    # tests/twins/world.py copies worlds to explore branches: a copy's store is its own.
    import copy

    _, spilled = _runs("catch-up-4")
    ledger = next(n.ledger for n in spilled.nodes.values() if n.ledger.entries.spilled)
    twin = copy.deepcopy(ledger)
    assert twin.entries.store is not ledger.entries.store
    assert twin.entries.store.directory != ledger.entries.store.directory
    key = lambda e: (e.block.hash, tuple(c.signature for c in e.certificate))  # noqa: E731
    assert [key(e) for e in twin.entries] == [key(e) for e in ledger.entries]
    twin.entries.store.close()
    assert [key(e) for e in ledger.entries][-1] == key(ledger.entries[-1])


def test_an_archived_executed_index_answers_as_a_plain_set_per_replica():
    """consensus/executed.py with its older blocks in a store (``ExecutedArchive``): forks,
    repeated blocks, restarts that re-execute a ledger; hex ids (the Bloom filter's fast
    path) and others."""
    import random

    from consensus.executed import ExecutedIndex
    from node.history import ExecutedArchive, HistoryStore

    rng = random.Random(13)
    store = HistoryStore("chain")
    archive = ExecutedArchive(store)
    index = ExecutedIndex(archive, recent=2)
    rids = [f"{i:064x}" for i in range(40)] + [f"r{i}" for i in range(20)]
    ledgers = [[] for _ in range(4)]
    views = [index.executed() for _ in range(4)]
    for step in range(300):
        who = rng.randrange(4)
        if rng.random() < 0.05:  # restart from its own ledger
            views[who] = index.executed()
            for ids in ledgers[who]:
                views[who] |= ids
        else:
            ids = frozenset(rng.sample(rids, rng.randint(1, 5)))
            views[who] |= ids
            ledgers[who].append(ids)
        model = [set().union(*ledger) for ledger in ledgers]
        for i in range(4):
            assert {r for r in rids + ["f" * 64, "unknown"] if r in views[i]} == model[i], (step, i)
    assert store._db.execute("SELECT count(*) FROM executed_blocks").fetchone()[0] > 100
    store.close()
