"""A node process's disk (node/sqlite_store.py): what it reads back is what the simulator's
memory would hold, a restart from the file is the node it was, and a kill -9 loses nothing
that was acknowledged (docs/storage.md)."""

from __future__ import annotations

import dataclasses
from copy import deepcopy
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import citychain.sim.run as simrun
from citychain.scenario import load_scenario
from citychain.summary import summarize
from consensus.durable import (Accepted, DurableState, NewViewBuilt, Prepared, Proposed, Stabilised, ViewChangeSent,
                               ViewInstalled)
from node.execution import Executor
from node.ledger import LineCache
from node.node import Node
from node.record_codec import decode_record, encode_record
from node.sqlite_store import FILE_NAME, SqliteLedger, SqliteStore, StorageError, open_node_storage
from node.state import WorldState
from node.store import MemoryStore
from tests.conftest import ROOT, SCENARIOS
from tests.node import sqlite_writer as writer

KINDS = (ViewChangeSent, NewViewBuilt, ViewInstalled, Proposed, Accepted, Prepared, Stabilised)


def assert_same(a, b, path="state"):
    """Field by field, into envelopes and blocks (``Signed`` and ``Block`` compare by identity)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def small(name: str, nodes: int = 7, transactions: int = 300, recover_ms: float | None = None):
    """A shipped fault scenario, smaller; ``recover_ms`` moves its recovery (to within the load)."""
    s = load_scenario(SCENARIOS / "faults" / name)
    data = s.model_dump()
    data["nodes"], data["workload"]["transactions"] = nodes, transactions
    if recover_ms is not None:
        [recover] = [f for f in data["faults"] if f["recover"]]
        recover["at_ms"] = recover_ms
    return type(s).model_validate(data)


@pytest.fixture(scope="module")
def recorded():
    """Each node's durable records from a real run with a primary crash and a view change."""
    logs: dict[str, list] = {}
    build = simrun.build

    def capturing(scenario):
        run = build(scenario)
        for node_id, node in run.nodes.items():
            log = logs[node_id] = []
            store = node.store

            def write(record, store=store, log=log):
                log.append(record)
                MemoryStore.write(store, record)
            store.write = write
        return run

    simrun.build = capturing
    try:
        run = simrun.simulate(small("primary-crash.yaml"))
    finally:
        simrun.build = build
    return run, logs


def pool_of(recorded) -> list:
    """Records of the run, and variants that reach the corners: many VIEW-CHANGEs (more
    than are kept), installs of views old and new, a view 0 install."""
    run, logs = recorded
    records = [r for log in logs.values() for r in log]
    vc = next(r.view_change for r in records if type(r) is ViewChangeSent)
    installed = next(r for r in records if type(r) is ViewInstalled and r.new_view is not None)
    extra = [ViewChangeSent(replace(vc, view=v)) for v in range(1, 21)]
    extra += [ViewInstalled(v, installed.new_view) for v in (1, 3, 9, 19)] + [ViewInstalled(0, None)]
    extra += [NewViewBuilt(v) for v in (2, 5)]
    return records + extra


def reopen(path: Path, chain_id: str) -> DurableState:
    store = SqliteStore(path, chain_id)
    try:
        return store.read()
    finally:
        store.close()


def test_the_run_writes_every_kind_of_record(recorded):
    _, logs = recorded
    assert {type(r) for log in logs.values() for r in log} == set(KINDS)


def test_every_record_round_trips_through_its_encoding(recorded):
    run, logs = recorded
    chain = run.genesis.chain_id
    for kind in KINDS:
        record = next(r for log in logs.values() for r in log if type(r) is kind)
        text = encode_record(record)
        assert text.isascii() and text == encode_record(decode_record(text, chain))
        assert_same(decode_record(text, chain), record, kind.__name__)


def test_each_nodes_records_read_back_as_memory_holds_them(recorded, tmp_path):
    run, logs = recorded
    chain = run.genesis.chain_id
    for node_id, log in logs.items():
        path = tmp_path / f"{node_id}.sqlite"
        store, memory = SqliteStore(path, chain), MemoryStore()
        for i, record in enumerate(log):
            store.write(record)
            memory.write(record)
            if i % 25 == 24:
                assert_same(reopen(path, chain), memory.read(), f"{node_id} after {i + 1} records")
        assert store.writes == memory.writes == len(log)
        assert_same(store.read(), memory.read(), node_id)
        store.close()
        assert_same(reopen(path, chain), memory.read(), node_id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_sequence_of_records_reads_back_as_memory_holds_it(recorded, data):
    """Records in any order, repeated, stale or superseded: the file holds what memory would."""
    pool = pool_of(recorded)
    chain = recorded[0].genesis.chain_id
    records = data.draw(st.lists(st.sampled_from(pool), max_size=40))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.sqlite"
        store, memory = SqliteStore(path, chain), MemoryStore()
        for record in records:
            store.write(record)
            memory.write(record)
        store.close()
        assert_same(reopen(path, chain), memory.read())


def test_stale_and_repeated_records_write_nothing(recorded, tmp_path):
    run, logs = recorded
    accepted = next(r for log in logs.values() for r in log if type(r) is Accepted)
    store = SqliteStore(tmp_path / "s.sqlite", run.genesis.chain_id)
    store.write(accepted)
    changes = store.db.conn.total_changes
    store.write(accepted)
    store.write(Stabilised(0, ()))
    assert store.db.conn.total_changes == changes and store.writes == 3


# ---- the ledger and the world state ---------------------------------------------------

def stored_chain(run, path: Path, genesis_state_root: str | None = None) -> tuple[SqliteLedger, WorldState]:
    """Re-execute the longest honest chain of ``run`` into a SqliteLedger at ``path``."""
    entries = max((run.nodes[n].ledger for n in run.honest), key=lambda ledger: ledger.height).entries
    state = WorldState()
    executor = Executor(run.apps, {c.id: (c.org, "client") for c in run.genesis.clients}, state)
    ledger = SqliteLedger(path, run.genesis.chain_id, run.genesis.hash, genesis_state_root=genesis_state_root)
    for e in entries:
        outcome = executor.execute(e.block)
        ledger.append(e.block, e.certificate, outcome.receipts, outcome)
    return ledger, state


def test_the_ledger_and_world_state_read_back_from_the_file(recorded, tmp_path):
    run, _ = recorded
    ledger, state = stored_chain(run, tmp_path / "l.sqlite")
    assert ledger.height > 10
    ledger.close()
    again = SqliteLedger(tmp_path / "l.sqlite", run.genesis.chain_id, run.genesis.hash,
                         genesis_state_root=run.genesis.doc["state_root"])
    assert again.height == ledger.height and again.transactions == ledger.transactions
    assert_same(again.entries, ledger.entries, "entries")
    lines = LineCache()
    assert [lines.line(e) for e in again.entries] == [lines.line(e) for e in ledger.entries]
    assert again.state.root() == state.root() == again.state_root
    assert dict(again.state.items()) == dict(state.items())
    again.close()


def test_an_append_that_does_not_extend_the_chain_is_refused_and_not_stored(recorded, tmp_path):
    run, _ = recorded
    ledger, _ = stored_chain(run, tmp_path / "l.sqlite")
    last = ledger.entries[-1]
    with pytest.raises(Exception, match="does not follow"):
        ledger.append(last.block, last.certificate, last.receipts, None)
    height = ledger.height
    ledger.close()
    assert SqliteLedger(tmp_path / "l.sqlite", run.genesis.chain_id, run.genesis.hash).height == height


def corrupt(path: Path, sql: str, *params) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, params)
    conn.close()


@pytest.mark.parametrize("damage, message", [
    (("UPDATE blocks SET entry = substr(entry, 1, 300) WHERE height = 3",), r"block 3: corrupt entry"),
    (("DELETE FROM blocks WHERE height = 2",), r"block 2 is missing"),
    (("UPDATE blocks SET hash = ? WHERE height = 4", "00" * 32), r"block 4: holds block 4"),
    (("UPDATE blocks SET state_root = ? WHERE height = 5", "00" * 32), r"block 6: its header's state root"),
    (("UPDATE state SET value = '\"forged\"' WHERE rowid = (SELECT min(rowid) FROM state)",),
     r"world state's root .* after block"),
    ((r"""UPDATE blocks SET entry = replace(entry, 'commit\"', 'prepare\"') WHERE height = 7""",),
     r"block 7: its certificate"),
])
def test_a_damaged_ledger_is_a_clear_error_naming_file_and_height(recorded, tmp_path, damage, message):
    run, _ = recorded
    path = tmp_path / "l.sqlite"
    stored_chain(run, path)[0].close()
    corrupt(path, *damage)
    with pytest.raises(StorageError, match=message) as err:
        SqliteLedger(path, run.genesis.chain_id, run.genesis.hash)
    assert str(path) in str(err.value)


def test_a_damaged_durable_row_is_a_clear_error(recorded, tmp_path):
    run, logs = recorded
    path = tmp_path / "s.sqlite"
    store = SqliteStore(path, run.genesis.chain_id)
    for record in logs["node-01"]:
        store.write(record)
    store.close()
    corrupt(path, "UPDATE durable SET record = substr(record, 1, 100) WHERE kind = 'prepared'"
                  " AND key = (SELECT max(key) FROM durable WHERE kind = 'prepared')")
    with pytest.raises(StorageError, match=r"s\.sqlite: durable record \(prepared, \d+\): corrupt"):
        SqliteStore(path, run.genesis.chain_id)


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / "x.sqlite").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StorageError, match="x.sqlite: cannot be opened as a citychain node database: file is not a database"):
        SqliteStore(tmp_path / "x.sqlite", "c")


# ---- the data directory ---------------------------------------------------------------

def test_a_data_directory_belongs_to_one_chain_and_genesis_and_one_process(tmp_path):
    store, ledger, state = open_node_storage(tmp_path / "data", "chain-a", "aa" * 32)
    assert ledger.state is state and ledger.height == 0 and store.read() == DurableState()
    with pytest.raises(StorageError, match="in use by another node process"):
        open_node_storage(tmp_path / "data", "chain-a", "aa" * 32)
    mode = store.db.conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = store.db.conn.execute("PRAGMA synchronous").fetchone()[0]
    assert (mode, sync) == ("wal", 2)  # 2 = FULL: each commit fsyncs the log
    store.close()
    with pytest.raises(StorageError, match="belongs to chain_id 'chain-a', not 'chain-b'"):
        open_node_storage(tmp_path / "data", "chain-b", "aa" * 32)
    with pytest.raises(StorageError, match="belongs to genesis_hash"):
        open_node_storage(tmp_path / "data", "chain-a", "bb" * 32)
    store, _, _ = open_node_storage(tmp_path / "data", "chain-a", "aa" * 32)  # refusals left it usable
    store.close()


# ---- kill -9 ----------------------------------------------------------------------------

def expected_after(records_written: int, height: int):
    """The durable state after that many records, and the ledger's blocks and state root."""
    memory, blocks, root = MemoryStore(), [], None
    done = 0
    for block, recs, outcome, _ in writer.chain():
        if done >= records_written and len(blocks) >= height:
            break
        for record in recs:
            if done < records_written:
                memory.write(record)
                done += 1
        if len(blocks) < height:
            blocks.append(block)
            root = outcome.state_root
    return memory.read(), blocks, root


def test_kill_9_loses_nothing_that_was_acknowledged(tmp_path):
    """Kill the writer at random moments (three times, resuming on the same directory);
    everything it printed as written is on disk, and at most the write in flight more."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    data = tmp_path / "data"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "tests.node.sqlite_writer", str(data)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wanted = rng.randrange(5, 120)
        acked = {"r": 0, "b": 0}
        for _ in range(wanted):
            line = proc.stdout.readline()
            assert line, f"writer ended early: {proc.stderr.read()}"
            kind, n = line.split()
            acked[kind] = int(n)
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        for line in rest.splitlines():  # acknowledged before the kill landed
            kind, n = line.split()
            acked[kind] = int(n)
        why = f"seed {seed}, round {round_}, acknowledged {acked}"
        store, ledger, state = open_node_storage(data, writer.CHAIN, writer.GENESIS,
                                                 genesis_state_root=writer.empty_state_root())
        try:
            assert ledger.height in (acked["b"], acked["b"] + 1), why
            durable, blocks, root = expected_after(acked["r"], ledger.height)
            if store.read().fingerprint() != durable.fingerprint():
                durable, _, _ = expected_after(acked["r"] + 1, ledger.height)  # the write in flight landed
            assert_same(store.read(), durable, why)
            assert [e.block.hash for e in ledger.entries] == [b.hash for b in blocks], why
            assert state.root() == (root or writer.empty_state_root()), why
        finally:
            store.close()


# ---- a simulated node on SQLite ------------------------------------------------------------

def on_sqlite(run, node_id: str, data_dir: Path, checks: list) -> None:
    """Give ``node_id`` a SQLite disk; on ``crash`` the file is closed (what a killed process
    leaves), on ``recover`` the node is rebuilt from a fresh open of it."""
    genesis = run.genesis
    node = run.nodes[node_id]

    def open_disk():
        store, ledger, state = open_node_storage(data_dir, genesis.chain_id, genesis.hash,
                                                 genesis_state_root=genesis.doc["state_root"])
        node.store, node.ledger, node.executor.state = store, ledger, state

    def crash(now):
        checks.append(("before", deepcopy(node.store.read()), list(node.ledger.entries), node.executor.state.root()))
        node.store.close()
        Node.crash(node, now)

    def recover(now):
        open_disk()
        checks.append(("after", deepcopy(node.store.read()), list(node.ledger.entries), node.executor.state.root()))
        Node.recover(node, now)

    open_disk()
    node.crash, node.recover = crash, recover


@pytest.mark.parametrize("name, node_id", [("crash-catch-up.yaml", "node-05"), ("primary-crash.yaml", "node-00")])
def test_a_node_on_sqlite_crashes_and_recovers_as_one_in_memory_does(tmp_path, name, node_id):
    scenario = small(name, nodes=7, transactions=1200, recover_ms=700)  # restarts while the load goes on
    in_memory = simrun.simulate(scenario)
    checks: list = []
    build = simrun.build

    def with_sqlite(s):
        run = build(s)
        on_sqlite(run, node_id, tmp_path / node_id, checks)
        return run

    simrun.build = with_sqlite
    try:
        run = simrun.simulate(scenario)
    finally:
        simrun.build = build
    s = summarize(run, name)
    assert s["safety_violations"] == 0 and s["agreement"] is True, s["safety_detail"]
    assert s["committed_tx"] == scenario.workload.transactions
    # The restart read back exactly what the node held when it crashed.
    [(_, durable, entries, root), (_, durable_again, entries_again, root_again)] = checks
    assert_same(durable_again, durable, "durable")
    assert_same(entries_again, entries, "ledger")
    assert root_again == root
    assert durable.fingerprint() != DurableState().fingerprint() and entries
    # Its ledger is the others', and the run is the run the simulator makes in memory.
    node = run.nodes[node_id]
    others = [run.nodes[n].ledger.hashes() for n in run.honest if n != node_id]
    assert all(node.ledger.hashes() == h[:node.ledger.height] for h in others)
    assert node.ledger.height == max(len(h) for h in others)
    assert {n: nd.ledger.hashes() for n, nd in run.nodes.items()} == \
        {n: nd.ledger.hashes() for n, nd in in_memory.nodes.items()}
    node.store.close()
    reopened = SqliteLedger(tmp_path / node_id / FILE_NAME, run.genesis.chain_id, run.genesis.hash)
    assert reopened.hashes() == node.ledger.hashes() and reopened.state.root() == node.executor.state.root()
    reopened.close()
