"""A node process's disk: its durable protocol state, ledger and world state in one SQLite file.

``open_node_storage(data_dir, chain_id, genesis_hash)`` opens ``DATA_DIR/node.sqlite``
(docs/storage.md describes the file) and returns the three things a node keeps:

- ``SqliteStore``: the durable protocol state (consensus/durable.py), the same
  interface as the simulator's ``MemoryStore``. ``write(record)`` returns once the
  record is committed and fsynced, so the message that depends on it leaves after.
- ``SqliteLedger``: a ``Ledger`` whose ``append`` stores the block, its certificate and
  receipts (one ledger line, docs/ledger.md) together with the block's world-state
  writes in one transaction, and which loads and checks everything back on open.
- the ``WorldState`` rebuilt from the stored state and checked against the ledger.

**Durability.** WAL journal with ``synchronous=FULL``: a commit returns once the
write-ahead log is fsynced, so what ``write`` or ``append`` acknowledged survives a
kill -9 and a power cut. Each ``write`` and each ``append`` is one transaction;
nothing is acknowledged half written.

**Why the store keeps the live records, not a log and not a snapshot.** A node
writes several records per block (``Accepted`` or ``Proposed``, ``Prepared``, now and
then ``Stabilised``), each carrying a whole block. A snapshot of ``DurableState``
rewritten on every write would cost the whole state (up to a watermark window of
blocks) per record; an append-only log would be cheap to write but grow without
bound, need compaction, and replay everything on restart. The ``durable`` table
instead holds, per slot of the state, the one record that produced it: the PRE-PREPARE
accepted at a sequence (highest view), the prepared certificate, the proposal, each
VIEW-CHANGE kept, the last ``ViewInstalled``, ``NewViewBuilt`` and ``Stabilised``. A
record that supersedes another overwrites its row; ``Stabilised`` deletes the rows
at or below its sequence; a record that changes nothing writes nothing. A write
costs one encoded record (the same as a log append), the table never holds more than
the state, and ``read`` on restart replays these rows, in a fixed order, through
``DurableState.apply`` itself. Which rows change is decided by applying the record
to an in-memory ``DurableState`` first: one rule, the one in consensus/durable.py,
for the simulator's memory and for this file.

**Why the world state is stored, not re-executed.** Each ``append`` upserts the
block's writes into the ``state`` table and records the state root after the block.
On open the state is loaded from that table and its root checked against the root
recorded with the last block (and every header's ``state_root`` against the root
recorded with the block below it). Replaying the chain instead would need the apps
and their settings at open time and cost the whole history on every restart.

Anything unexpected on open (a missing height, a row that does not decode, a hash or
root that does not match) is a ``StorageError`` naming the file and the height; a
committed block is never silently dropped.

The objects are not thread-safe: use them from one thread at a time.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from consensus.block import Block
from consensus.durable import (Accepted, DurableState, NewViewBuilt, Prepared, Proposed, Record, Stabilised,
                               ViewChangeSent, ViewInstalled)
from consensus.messages import Commit, Signed

from .codec import MalformedMessage
from .execution import BlockOutcome, Receipt
from .ledger import Ledger, LedgerEntry, LineCache, parse_line
from .record_codec import TAGS, MalformedRecord, decode_record, encode_record
from .state import WorldState

FORMAT = "citychain-node/1"
FILE_NAME = "node.sqlite"
LOCK_NAME = "node.lock"

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS durable (kind TEXT NOT NULL, key INTEGER NOT NULL, record TEXT NOT NULL,"
    " PRIMARY KEY (kind, key))",
    "CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, hash TEXT NOT NULL,"
    " state_root TEXT NOT NULL, entry TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

# The order in which ``read`` replays the durable rows (see ``SqliteStore``).
_REPLAY = ("stabilised", "view-installed", "view-change-sent", "new-view-built", "proposed", "accepted", "prepared")
_PER_SEQ = ("proposed", "accepted", "prepared")


class StorageError(RuntimeError):
    """The node's data cannot be used as it is: corrupt, another chain's, or in use."""


class Database:
    """One SQLite file in WAL mode with synchronous=FULL, shared by a node's store and ledger."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.conn = None
        fresh = not self.path.exists()
        try:
            conn = self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"{self.path}: cannot use the WAL journal (got {mode!r})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")  # a reader (status, audit) may hold it briefly
            conn.execute("PRAGMA journal_size_limit=67108864")  # trim the WAL back to 64 MiB after checkpoints
            with self.transaction():
                for statement in SCHEMA:
                    conn.execute(statement)
                self._claim(conn, "format", FORMAT)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StorageError(f"{self.path}: cannot be opened as a citychain node database: {exc}") from None
        except BaseException:
            self.close()
            raise
        if fresh:
            _fsync_dir(self.path.parent)  # the new file's directory entry is durable too

    @contextmanager
    def transaction(self):
        """BEGIN IMMEDIATE ... COMMIT: durable (fsynced) when the block exits normally."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def claim(self, key: str, value: str) -> None:
        """Record ``key`` = ``value`` in the file, or refuse a file that holds another value."""
        with self.transaction() as conn:
            self._claim(conn, key, value)

    def _claim(self, conn, key: str, value: str) -> None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        elif row[0] != value:
            raise StorageError(f"{self.path}: belongs to {key} {row[0]!r}, not {value!r}")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _query(db: Database, sql: str, where: str):
    try:
        return db.conn.execute(sql).fetchall()
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{db.path}: cannot read {where}: {exc}") from None


class SqliteStore:
    """The durable protocol state in SQLite: ``MemoryStore``'s interface, durable on disk.

    ``state`` mirrors the file: each ``write`` applies the record to it with
    ``DurableState.apply`` and then stores the rows that changed. If storing fails the
    store refuses every later call: the mirror is then ahead of the disk, and the node
    must stop and restart from the file.
    """

    def __init__(self, path: str | Path, chain_id: str, *, database: Database | None = None):
        self.db = database if database is not None else Database(path)
        self.path = self.db.path
        self.chain_id = chain_id
        self.db.claim("chain_id", chain_id)
        self.writes = 0
        self.failed: BaseException | None = None
        self.state = self._load()

    def write(self, record: Record) -> None:
        if self.failed is not None:
            raise StorageError(f"{self.path}: an earlier write failed ({self.failed!r}); restart from the file")
        upserts, deletes = self._apply(record)
        if upserts or deletes:
            try:
                with self.db.transaction() as conn:
                    if deletes:
                        for sql, params in deletes:
                            conn.execute(sql, params)
                    conn.executemany(
                        "INSERT INTO durable (kind, key, record) VALUES (?, ?, ?)"
                        " ON CONFLICT (kind, key) DO UPDATE SET record = excluded.record",
                        [(kind, key, encode_record(rec)) for kind, key, rec in upserts])
            except BaseException as exc:
                self.failed = exc
                raise
        self.writes += 1

    def read(self) -> DurableState:
        if self.failed is not None:
            raise StorageError(f"{self.path}: an earlier write failed ({self.failed!r}); restart from the file")
        return self.state

    def close(self) -> None:
        self.db.close()

    def _apply(self, record: Record) -> tuple[list, list]:
        """Apply ``record`` to the mirror; return the rows to upsert, (kind, key, record),
        and the deletions that bring the file to the same state."""
        s = self.state
        kind = type(record)
        if kind is Accepted or kind is Prepared or kind is Proposed:
            if kind is Accepted:
                table, seq, value = s.accepted, record.pre_prepare.message.seq, record.pre_prepare
            elif kind is Prepared:
                table, seq, value = s.prepared, record.proof.pre_prepare.message.seq, record.proof
            else:
                table, seq, value = s.proposed, record.pre_prepare.seq, record.pre_prepare
            before = table.get(seq)
            s.apply(record)
            after = table.get(seq)
            if after is before:
                return [], []
            assert after is value
            return [(TAGS[kind], seq, record)], []
        if kind is Stabilised:
            before = s.stable_seq
            s.apply(record)
            if s.stable_seq == before:
                return [], []
            return [("stabilised", 0, record)], [
                ("DELETE FROM durable WHERE kind IN (?, ?, ?) AND key <= ?", (*_PER_SEQ, record.seq))]
        # The view: installed view and its NEW-VIEW, the VIEW-CHANGEs kept, the NEW-VIEW
        # built. ``view``, ``active`` and ``view_change`` follow from these (``read``).
        installed, new_view, built = s.installed_view, s.new_view, s.built_new_view
        sent = dict(s.view_changes_sent)
        s.apply(record)
        upserts, deletes = [], []
        if s.installed_view != installed or s.new_view is not new_view:
            upserts.append(("view-installed", 0, ViewInstalled(s.installed_view, s.new_view)))
        if s.built_new_view != built:
            upserts.append(("new-view-built", 0, NewViewBuilt(s.built_new_view)))
        for view, vc in s.view_changes_sent.items():
            if sent.get(view) is not vc:
                upserts.append(("view-change-sent", view, ViewChangeSent(vc)))
        for view in sent:
            if view not in s.view_changes_sent:
                deletes.append(("DELETE FROM durable WHERE kind = ? AND key = ?", ("view-change-sent", view)))
        return upserts, deletes

    def _load(self) -> DurableState:
        """Replay the stored rows: the stable point, the installed view, the VIEW-CHANGEs
        sent since (lowest view first), the NEW-VIEW built, then the per-sequence records.
        In this order ``DurableState.apply`` rebuilds exactly the state they were cut from."""
        rows = _query(self.db, "SELECT kind, key, record FROM durable", "the durable protocol state")
        order = {kind: i for i, kind in enumerate(_REPLAY)}
        state = DurableState()
        for kind, key, text in sorted(rows, key=lambda r: (order.get(r[0], -1), r[1])):
            where = f"{self.path}: durable record ({kind}, {key})"
            if kind not in order:
                raise StorageError(f"{where}: unknown kind")
            try:
                record = decode_record(text, self.chain_id)
            except MalformedRecord as exc:
                raise StorageError(f"{where}: corrupt: {exc}") from None
            if TAGS[type(record)] != kind or _key_of(record) != key:
                raise StorageError(f"{where}: holds a {TAGS[type(record)]} record for key {_key_of(record)}")
            state.apply(record)
        return state


def _key_of(record: Record) -> int:
    kind = type(record)
    if kind is Accepted:
        return record.pre_prepare.message.seq
    if kind is Prepared:
        return record.proof.pre_prepare.message.seq
    if kind is Proposed:
        return record.pre_prepare.seq
    if kind is ViewChangeSent:
        return record.view_change.view
    return 0


class SqliteLedger(Ledger):
    """The ledger and the world state in SQLite; ``state`` is the world state it rebuilt.

    ``append`` needs the block's ``outcome`` (``Node._execute`` passes it): its writes go
    into the ``state`` table and its state root beside the block, in one transaction.
    """

    def __init__(self, path: str | Path, chain_id: str, genesis_hash: str, *, database: Database | None = None,
                 genesis_state_root: str | None = None):
        super().__init__(genesis_hash)
        self.db = database if database is not None else Database(path)
        self.path = self.db.path
        self.chain_id = chain_id
        self.db.claim("chain_id", chain_id)
        self.db.claim("genesis_hash", genesis_hash)
        self.state = WorldState()
        self.state_root = genesis_state_root  # after the last block; None: not known (an empty ledger)
        self._load(genesis_state_root)

    def append(self, block: Block, certificate: tuple[Signed, ...], receipts: tuple[Receipt, ...],
               outcome: BlockOutcome | None = None) -> None:
        self.check_extends(block)
        if outcome is None:
            raise TypeError("SqliteLedger.append needs the block's outcome: its writes and state root")
        entry = LedgerEntry(block, certificate, receipts)
        final = dict(outcome.writes)
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO blocks (height, hash, state_root, entry) VALUES (?, ?, ?, ?)",
                         (block.height, block.hash, outcome.state_root, LineCache().line(entry)))
            conn.executemany("INSERT INTO state (key, value) VALUES (?, ?)"
                             " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             [(k, v) for k, v in final.items() if v is not None])
            conn.executemany("DELETE FROM state WHERE key = ?", [(k,) for k, v in final.items() if v is None])
        self.entries.append(entry)
        self.transactions += len(block.requests)
        self.state_root = outcome.state_root

    def close(self) -> None:
        self.db.close()

    def _load(self, genesis_state_root: str | None) -> None:
        rows = _query(self.db, "SELECT height, hash, state_root, entry FROM blocks ORDER BY height", "the ledger")
        root = genesis_state_root
        for expected, (height, digest, root_after, text) in enumerate(rows, 1):
            where = f"{self.path}: block {expected}"
            if height != expected:
                raise StorageError(f"{where} is missing (the next one stored is {height})")
            try:
                entry = parse_line(text, self.chain_id)
            except MalformedMessage as exc:
                raise StorageError(f"{where}: corrupt entry: {exc}") from None
            block = entry.block
            problem = None
            if block.hash != digest or block.height != height:
                problem = f"holds block {block.height} {block.hash[:12]}, stored as {digest[:12]}"
            elif block.header.prev_hash != self.head_hash:
                problem = f"does not extend block {height - 1} ({block.header.prev_hash[:12]} != {self.head_hash[:12]})"
            elif root is not None and block.header.state_root != root:
                problem = f"its header's state root {block.header.state_root[:12]} is not the root after block " \
                          f"{height - 1} ({root[:12]})"
            elif any(type(c.message) is not Commit or c.message.digest != digest or c.message.seq != height
                     for c in entry.certificate):
                problem = "its certificate holds something other than commits for it"
            if problem:
                raise StorageError(f"{where}: {problem}")
            self.entries.append(entry)
            self.transactions += len(block.requests)
            root = root_after
        writes = _query(self.db, "SELECT key, value FROM state", "the world state")
        self.state.apply(tuple(writes))
        if rows:
            if self.state.root() != root:
                raise StorageError(f"{self.path}: the world state's root {self.state.root()[:12]} is not the root "
                                   f"recorded after block {len(rows)} ({root[:12]})")
            self.state_root = root
        elif writes:
            raise StorageError(f"{self.path}: a world state without blocks")


def open_node_storage(data_dir: str | Path, chain_id: str, genesis_hash: str, *,
                      genesis_state_root: str | None = None) -> tuple[SqliteStore, SqliteLedger, WorldState]:
    """Open (or create) a node's data directory: its durable store, ledger and world state.

    Refuses a directory whose file belongs to another chain or genesis, or that another
    process has open (two processes writing one node's votes would equivocate).
    ``store.close()`` (or ``ledger.close()``) closes the file and releases the directory.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise StorageError(f"{data_dir}: in use by another node process") from None
    db = _LockedDatabase(data_dir / FILE_NAME, lock)  # releases the lock if it cannot open
    try:
        store = SqliteStore(db.path, chain_id, database=db)
        ledger = SqliteLedger(db.path, chain_id, genesis_hash, database=db, genesis_state_root=genesis_state_root)
    except BaseException:
        db.close()
        raise
    return store, ledger, ledger.state


class _LockedDatabase(Database):
    """A database that also holds its data directory's lock until it is closed."""

    def __init__(self, path: Path, lock_fd: int):
        self.lock_fd = lock_fd
        super().__init__(path)

    def close(self) -> None:
        super().close()
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # closing the descriptor releases the flock
            self.lock_fd = None


def ledger_lines(data_dir: str | Path) -> list[str]:
    """The node's ledger as export lines (docs/ledger.md), in height order, read without
    taking the node's lock: a running node goes on writing (WAL readers do not block it).
    The lines are what the node stored; the auditor checks them, not this function."""
    path = Path(data_dir) / FILE_NAME
    if not path.exists():
        raise StorageError(f"{path}: no node store here")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return [row[0] for row in conn.execute("SELECT entry FROM blocks ORDER BY height")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot read its blocks ({exc})") from None
