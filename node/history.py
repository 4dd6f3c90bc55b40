"""Committed history on disk: the simulator's ledgers keep their last blocks in memory
and the rest here, so a run's memory does not grow with its length (issue 13).

One store per simulated run, shared by all its ledgers. The simulator's nodes share
block, receipt and envelope objects, so the store keeps each block's header and
transactions once (by hash), each receipt list and each COMMIT once (by the object, while
it is recent), and per ledger and height only which of those its entry holds. Every
part is kept as the canonical JSON text the export writes (docs/ledger.md), so a spilled
entry exports without being decoded, byte for byte as from memory; reading one back
decodes it (node/codec.py), sharing recently decoded blocks and COMMITs between readers.

The store is scratch: it lives in a temporary directory, removed with the store, and
holds nothing a run's outputs do not also hold. A node crash in the simulator keeps its
ledger object, so it keeps its spilled entries too.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import weakref
from collections import OrderedDict
from pathlib import Path

from consensus.encoding import canonical

from .codec import decode_block, decode_object
from .execution import receipts_from

_RECENT = 4096  # objects remembered by identity (store) or by row (decoded) before the oldest is forgotten


class _Recent(OrderedDict):
    """A bounded map that forgets its oldest key first."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def remember(self, key, value) -> None:
        self[key] = value
        if len(self) > self.limit:
            self.popitem(last=False)


class HistoryStore:
    """The spilled ledger entries of one run (SQLite in a temporary directory)."""

    def __init__(self, chain_id: str, directory: Path | None = None):
        self.chain_id = chain_id
        self.directory = Path(tempfile.mkdtemp(prefix="citychain-history-", dir=directory))
        self._db = _open(self.directory)
        self._db.executescript("""
            CREATE TABLE blocks (hash TEXT PRIMARY KEY, header TEXT NOT NULL, txs TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL);
            CREATE TABLE entries (ledger INTEGER, height INTEGER, hash TEXT NOT NULL, receipts INTEGER NOT NULL,
                                  certificate TEXT NOT NULL, PRIMARY KEY (ledger, height)) WITHOUT ROWID;
            CREATE TABLE submitted (tx TEXT PRIMARY KEY, at INTEGER NOT NULL);
            CREATE TABLE tx_blocks (tx TEXT NOT NULL, hash TEXT NOT NULL);
            CREATE INDEX tx_blocks_tx ON tx_blocks (tx);
        """)
        # One transaction, never committed: the store dies with its run, and a statement
        # outside a transaction costs a transaction's locking each (about 80 µs here).
        self._db.execute("BEGIN")
        self.ledgers = 0
        self._stored_blocks = _Recent(_RECENT)  # hash -> True: already in ``blocks``
        self._rows = _Recent(_RECENT)  # id(object) -> (object, row in ``texts``): receipt lists, COMMITs
        self._blocks = _Recent(64)  # hash -> decoded Block
        self._decoded = _Recent(_RECENT)  # row in ``texts`` -> decoded COMMIT or receipt tuple
        self._finalizer = weakref.finalize(self, _remove, self._db, self.directory)

    def __deepcopy__(self, memo) -> "HistoryStore":
        """An independent copy (a copied world, tests/twins/world.py, goes its own way):
        the database copied to a directory of its own, the caches with it (what they name
        is in both)."""
        new = HistoryStore.__new__(HistoryStore)
        memo[id(self)] = new
        new.chain_id, new.ledgers = self.chain_id, self.ledgers
        new.directory = Path(tempfile.mkdtemp(prefix="citychain-history-", dir=self.directory.parent))
        new._db = _open(new.directory)
        self._db.execute("COMMIT")  # a backup copies what is committed
        self._db.backup(new._db)
        self._db.execute("BEGIN")
        new._db.execute("BEGIN")
        for name in ("_stored_blocks", "_rows", "_blocks", "_decoded"):
            mine = getattr(self, name)
            setattr(new, name, _Recent(mine.limit))
            getattr(new, name).update(mine)
        new._finalizer = weakref.finalize(new, _remove, new._db, new.directory)
        return new

    def close(self) -> None:
        self._finalizer()

    def new_ledger(self) -> int:
        self.ledgers += 1
        return self.ledgers

    # ---- writing --------------------------------------------------------------------

    def put(self, ledger: int, entry) -> None:
        block = entry.block
        if block.hash not in self._stored_blocks:
            known = self._db.execute("SELECT 1 FROM blocks WHERE hash = ?", (block.hash,)).fetchone()
            if known is None:
                self._db.execute("INSERT INTO blocks VALUES (?, ?, ?)", (
                    block.hash, canonical(block.header.to_dict()).decode(),
                    canonical([r.to_dict() for r in block.requests]).decode()))
            self._stored_blocks.remember(block.hash, True)
        receipts = self._row(entry.receipts, lambda rs: canonical([r.to_dict() for r in rs]).decode())
        certificate = ",".join(str(self._row(c, lambda c: canonical(c.to_dict()).decode())) for c in entry.certificate)
        self._db.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?)",
                         (ledger, block.height, block.hash, receipts, certificate))

    def _row(self, obj, encode) -> int:
        known = self._rows.get(id(obj))
        if known is not None and known[0] is obj:
            return known[1]
        row = self._db.execute("INSERT INTO texts (text) VALUES (?)", (encode(obj),)).lastrowid
        self._rows.remember(id(obj), (obj, row))
        return row

    # ---- reading --------------------------------------------------------------------

    def _parts(self, ledger: int, start: int, stop: int):
        """(hash, header, txs, receipts row, certificate rows) for heights start..stop-1."""
        return self._db.execute(
            "SELECT e.hash, b.header, b.txs, e.receipts, e.certificate FROM entries e JOIN blocks b ON b.hash = e.hash "
            "WHERE e.ledger = ? AND e.height >= ? AND e.height < ? ORDER BY e.height", (ledger, start, stop))

    def _texts(self, rows: list[int]) -> dict[int, str]:
        out = {}
        for i in range(0, len(rows), 500):
            chunk = rows[i:i + 500]
            out.update(self._db.execute(f"SELECT id, text FROM texts WHERE id IN ({','.join('?' * len(chunk))})",
                                        chunk).fetchall())
        return out

    def lines(self, ledger: int, start: int, stop: int):
        """The export lines (node/ledger.py ``LineCache.line``) of heights start..stop-1."""
        for block_hash, header, txs, receipts, certificate in self._parts(ledger, start, stop).fetchall():
            rows = [int(r) for r in certificate.split(",")] if certificate else []
            texts = self._texts(rows + [receipts])
            cert = ",".join(texts[r] for r in rows)
            yield (f'{{"certificate":[{cert}],"hash":"{block_hash}","header":{header},'
                   f'"receipts":{texts[receipts]},"txs":{txs}}}')

    def entries(self, ledger: int, start: int, stop: int) -> list[tuple]:
        """The (block, certificate, receipts) of heights start..stop-1, decoded."""
        out = []
        for block_hash, header, txs, receipts, certificate in self._parts(ledger, start, stop).fetchall():
            rows = [int(r) for r in certificate.split(",")] if certificate else []
            missing = [r for r in rows + [receipts] if r not in self._decoded]
            texts = self._texts(missing) if missing else {}
            for r in missing:
                value = json.loads(texts[r])
                self._decoded.remember(r, receipts_from(value) if r == receipts else decode_object(value, self.chain_id))
            block = self._blocks.get(block_hash)
            if block is None:
                block = decode_block({"hash": block_hash, "header": json.loads(header), "txs": json.loads(txs)},
                                     self.chain_id)
                self._blocks.remember(block_hash, block)
            out.append((block, tuple(self._decoded[r] for r in rows), self._decoded[receipts]))
        return out


class SubmittedTimes:
    """node/metrics.py ``submitted`` in a HistoryStore: tx id -> submission time (ns), a
    mapping that iterates in the order transactions were first submitted, as a dict does."""

    def __init__(self, store: HistoryStore):
        self.store = store

    @property
    def _db(self) -> sqlite3.Connection:
        return self.store._db

    def __setitem__(self, tx: str, at: int) -> None:
        self._db.execute("INSERT INTO submitted VALUES (?, ?) ON CONFLICT (tx) DO UPDATE SET at = excluded.at",
                         (tx, at))

    def get(self, tx: str, default=None):
        row = self._db.execute("SELECT at FROM submitted WHERE tx = ?", (tx,)).fetchone()
        return default if row is None else row[0]

    def __contains__(self, tx: str) -> bool:
        return self.get(tx) is not None

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM submitted").fetchone()[0]

    def items(self):
        yield from self._db.execute("SELECT tx, at FROM submitted ORDER BY rowid")

    def __iter__(self):
        return (tx for tx, _ in self.items())


class TxBlocks:
    """node/metrics.py ``tx_blocks`` in a HistoryStore: tx id -> the hashes of the
    executed blocks that hold it (one, unless forks carried it twice)."""

    def __init__(self, store: HistoryStore):
        self.store = store

    @property
    def _db(self) -> sqlite3.Connection:
        return self.store._db

    def add_block(self, block) -> None:
        self._db.executemany("INSERT INTO tx_blocks VALUES (?, ?)", ((r.digest, block.hash) for r in block.requests))

    def get(self, tx: str, default=()):
        rows = self._db.execute("SELECT hash FROM tx_blocks WHERE tx = ? ORDER BY rowid", (tx,)).fetchall()
        return [h for h, in rows] if rows else default

    def items(self):
        tx, hashes = None, []
        for t, h in self._db.execute("SELECT tx, hash FROM tx_blocks ORDER BY tx, rowid"):
            if t != tx and tx is not None:
                yield tx, hashes
                hashes = []
            tx = t
            hashes.append(h)
        if tx is not None:
            yield tx, hashes


def _open(directory: Path) -> sqlite3.Connection:
    # Any thread may be the one whose garbage collection finalizes the store (a
    # verify-ahead worker: citychain/sim/verify.py), and closes the connection.
    db = sqlite3.connect(directory / "history.sqlite", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    return db


def _remove(db: sqlite3.Connection, directory: Path) -> None:
    db.close()
    shutil.rmtree(directory, ignore_errors=True)
