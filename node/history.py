"""Committed history on disk: the simulator's ledgers keep their last blocks in memory
and the rest here, so a run's memory does not grow with its length (issue 13).

One store per simulated run, shared by all its ledgers. The simulator's nodes share
block, receipt and envelope objects, so the store keeps each block's header and
transactions once (by hash), each receipt list and each COMMIT once (by the object, while
it is recent), and per ledger and height only which of those its entry holds. Every
part is kept as the canonical JSON text the export writes (docs/ledger.md), so a spilled
entry exports without being decoded, byte for byte as from memory; reading one back
decodes it (node/codec.py), sharing recently decoded blocks and COMMITs between readers.

The store is scratch: it lives in a temporary directory (``citychain-history-PID-*``,
under the directory its run names or else ``$TMPDIR``), removed when the store is closed
or collected, at the process's exit, and on SIGINT or SIGTERM (``close_all``, called by
the CLI's handler); it holds nothing a run's outputs do not also hold. SIGKILL cannot be
caught: a directory left by a killed process is removed by the next store made in the
same parent directory (its PID is no longer running). A node crash in the simulator
keeps its ledger object, so it keeps its spilled entries too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import weakref
from collections import OrderedDict
from pathlib import Path

from consensus.encoding import canonical

from .codec import decode_block, decode_object
from .execution import receipts_from

_PREFIX = "citychain-history-"
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
        self.directory = _make_directory(directory)
        self._db = _open(self.directory)
        self._db.executescript("""
            CREATE TABLE blocks (hash TEXT PRIMARY KEY, header TEXT NOT NULL, txs TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL);
            CREATE TABLE entries (ledger INTEGER, height INTEGER, hash TEXT NOT NULL, receipts INTEGER NOT NULL,
                                  certificate TEXT NOT NULL, PRIMARY KEY (ledger, height)) WITHOUT ROWID;
            CREATE TABLE submitted (tx TEXT PRIMARY KEY, at INTEGER NOT NULL);
            CREATE TABLE tx_blocks (tx TEXT NOT NULL, hash TEXT NOT NULL);
            CREATE INDEX tx_blocks_tx ON tx_blocks (tx);
            CREATE TABLE executions (hash TEXT NOT NULL, at INTEGER NOT NULL);
            CREATE INDEX executions_hash ON executions (hash, at);
            CREATE TABLE replies (hash TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE committed (tx TEXT PRIMARY KEY, at INTEGER NOT NULL);
            CREATE TABLE proposals (sender TEXT, view INTEGER, seq INTEGER, digest TEXT,
                                    PRIMARY KEY (sender, view, seq, digest)) WITHOUT ROWID;
            CREATE TABLE executed_blocks (id INTEGER PRIMARY KEY, holders TEXT NOT NULL);
            CREATE TABLE executed_ids (rid TEXT NOT NULL, block INTEGER NOT NULL);
            CREATE INDEX executed_ids_rid ON executed_ids (rid);
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
        _OPEN.add(self)

    def __deepcopy__(self, memo) -> "HistoryStore":
        """An independent copy (a copied world, tests/twins/world.py, goes its own way):
        the database copied to a directory of its own, the caches with it (what they name
        is in both)."""
        new = HistoryStore.__new__(HistoryStore)
        memo[id(self)] = new
        new.chain_id, new.ledgers = self.chain_id, self.ledgers
        new.directory = _make_directory(self.directory.parent)
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
        _OPEN.add(new)
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


class ExecutionTimes:
    """node/metrics.py ``executed_at`` in a HistoryStore: block hash -> when each node
    executed it. How many nodes executed a block is asked for every retry check, so the
    counts of the most recent blocks stay in memory; older ones are counted in the store."""

    def __init__(self, store: HistoryStore, recent: int = _RECENT):
        self.store = store
        self._counts = _Recent(recent)  # block hash -> executions so far

    @property
    def _db(self) -> sqlite3.Connection:
        return self.store._db

    def add(self, block_hash: str, at: int) -> bool:
        """Record one execution; True if it is the block's first."""
        count = self.count(block_hash)
        self._db.execute("INSERT INTO executions VALUES (?, ?)", (block_hash, at))
        self._counts.remember(block_hash, count + 1)
        return count == 0

    def count(self, block_hash: str) -> int:
        count = self._counts.get(block_hash)
        if count is None:
            count = self._db.execute("SELECT count(*) FROM executions WHERE hash = ?", (block_hash,)).fetchone()[0]
        return count

    def reply_times(self, f: int) -> "ReplyTimes":
        """Per block executed by more than f nodes: the (f + 1)-th earliest execution."""
        db = self._db
        db.execute("DELETE FROM replies")
        db.execute("INSERT INTO replies SELECT h.hash, (SELECT at FROM executions e WHERE e.hash = h.hash "
                   "ORDER BY at LIMIT 1 OFFSET ?) AS at FROM (SELECT DISTINCT hash FROM executions) h "
                   "WHERE at IS NOT NULL", (f,))
        return ReplyTimes(self.store)


class ReplyTimes:
    """``ExecutionTimes.reply_times``: a read-only mapping block hash -> reply time."""

    def __init__(self, store: HistoryStore):
        self.store = store

    def get(self, block_hash: str, default=None):
        row = self.store._db.execute("SELECT at FROM replies WHERE hash = ?", (block_hash,)).fetchone()
        return default if row is None else row[0]

    def __getitem__(self, block_hash: str) -> int:
        at = self.get(block_hash)
        if at is None:
            raise KeyError(block_hash)
        return at

    def __contains__(self, block_hash: str) -> bool:
        return self.get(block_hash) is not None

    def __len__(self) -> int:
        return self.store._db.execute("SELECT count(*) FROM replies").fetchone()[0]


class CommittedTimes:
    """The summary's per-transaction reply times (citychain/summary.py) in a HistoryStore:
    tx id -> when f + 1 nodes had executed the reference chain's block holding it, kept in
    the order transactions were first met, a later block's time replacing an earlier one's,
    as a dict does; and the figures the summary takes from them, computed by the store."""

    def __init__(self, store: HistoryStore):
        self.store = store
        store._db.execute("DELETE FROM committed")

    @property
    def _db(self) -> sqlite3.Connection:
        return self.store._db

    def put_many(self, pairs) -> None:
        self._db.executemany("INSERT INTO committed VALUES (?, ?) ON CONFLICT (tx) DO UPDATE SET at = excluded.at",
                             pairs)

    def latencies(self):
        """ns from submission to reply, per committed and submitted tx, in the dict's order."""
        return (v for v, in self._db.execute(
            "SELECT c.at - s.at FROM committed c JOIN submitted s ON s.tx = c.tx ORDER BY c.rowid"))

    def index_latencies(self) -> int:
        """Index the latencies by value, for ``nth_latency``, and return how many there are."""
        db = self._db
        db.execute("DROP TABLE IF EXISTS latency_order")
        db.execute("CREATE TABLE latency_order (v INTEGER NOT NULL)")
        db.execute("INSERT INTO latency_order SELECT c.at - s.at FROM committed c JOIN submitted s ON s.tx = c.tx")
        db.execute("CREATE INDEX latency_order_v ON latency_order (v)")
        return db.execute("SELECT count(*) FROM latency_order").fetchone()[0]

    def nth_latency(self, i: int) -> int:
        """The i-th smallest latency (from 0), after ``index_latencies``."""
        return self._db.execute("SELECT v FROM latency_order ORDER BY v LIMIT 1 OFFSET ?", (i,)).fetchone()[0]

    def uncommitted(self) -> int:
        """Submitted transactions with no reply time."""
        return self._db.execute("SELECT count(*) FROM submitted WHERE tx NOT IN (SELECT tx FROM committed)").fetchone()[0]

    def worst_wait(self, since: int) -> tuple[str | None, int]:
        """(tx, ns) of the longest wait from the later of its submission and ``since`` to its
        reply, the first submitted among equals; (None, 0) if none."""
        row = self._db.execute("SELECT s.tx, c.at - max(s.at, ?) AS w FROM submitted s JOIN committed c ON c.tx = s.tx "
                               "ORDER BY w DESC, s.rowid LIMIT 1", (since,)).fetchone()
        return (None, 0) if row is None else (row[0], row[1])


class Proposals:
    """node/metrics.py ``proposals`` in a HistoryStore: the digests each primary's
    PRE-PREPAREs named, per (view, seq), for finding equivocation at the end of a run."""

    def __init__(self, store: HistoryStore):
        self.store = store

    def add(self, primary: str, view: int, seq: int, digest: str) -> None:
        self.store._db.execute("INSERT OR IGNORE INTO proposals VALUES (?, ?, ?, ?)", (primary, view, seq, digest))

    def equivocations(self) -> list[tuple[str, int, int, list[str]]]:
        """(primary, view, seq, digests) sorted, for each (view, seq) with two or more digests."""
        out: list[tuple[str, int, int, list[str]]] = []
        for p, v, s, d in self.store._db.execute(
                "SELECT sender, view, seq, digest FROM proposals WHERE (sender, view, seq) IN "
                "(SELECT sender, view, seq FROM proposals GROUP BY sender, view, seq HAVING count(*) > 1) "
                "ORDER BY sender, view, seq, digest"):
            if out and out[-1][:3] == (p, v, s):
                out[-1][3].append(d)
            else:
                out.append((p, v, s, [d]))
        return out


class ExecutedArchive:
    """The archive of a consensus/executed.py ``ExecutedIndex`` in a HistoryStore: the
    request ids of the blocks it no longer keeps in memory, and which replicas executed
    each. Nearly every question is about a request not executed yet, so a Bloom filter of
    fixed size (``BLOOM_BITS``) answers most without the store: it can only say "maybe",
    never a wrong "no", and a "maybe" is settled by the store, so answers are exact."""

    BLOOM_BITS = 1 << 26  # 8 MiB: about 0.1 % false "maybe" at a million ids, 7 % at ten million

    def __init__(self, store: HistoryStore):
        self.store = store
        # Made at the first block archived: most runs (every test world the Twins search
        # copies, thousands of times) never archive one and should not carry 8 MiB.
        self.bloom: bytearray | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        return self.store._db

    @staticmethod
    def _bits(rid: str) -> tuple[int, int]:
        try:
            h = int(rid[:13], 16)  # a request id is a SHA-256 in hex: its first 52 bits
        except ValueError:
            h = int(hashlib.sha256(rid.encode()).hexdigest()[:13], 16)
        return h & 0x3FFFFFF, h >> 26

    def add(self, blocks: list[tuple[frozenset, set[int]]]) -> None:
        if self.bloom is None:
            self.bloom = bytearray(self.BLOOM_BITS // 8)
        db, bloom, bits = self._db, self.bloom, self._bits
        for ids, holders in blocks:
            block = db.execute("INSERT INTO executed_blocks (holders) VALUES (?)",
                               (",".join(map(str, sorted(holders))),)).lastrowid
            db.executemany("INSERT INTO executed_ids VALUES (?, ?)", ((rid, block) for rid in ids))
            for rid in ids:
                for bit in bits(rid):
                    bloom[bit >> 3] |= 1 << (bit & 7)

    def holds(self, rid: str, replica: int) -> bool:
        bloom = self.bloom
        if bloom is None:  # nothing archived yet
            return False
        a, b = self._bits(rid)
        if not (bloom[a >> 3] >> (a & 7)) & 1 or not (bloom[b >> 3] >> (b & 7)) & 1:
            return False
        rows = self._db.execute("SELECT b.holders FROM executed_ids e JOIN executed_blocks b ON b.id = e.block "
                                "WHERE e.rid = ?", (rid,)).fetchall()
        mine = str(replica)
        return any(mine in holders.split(",") for holders, in rows)


_OPEN: "weakref.WeakSet[HistoryStore]" = weakref.WeakSet()


def close_all() -> None:
    """Close (and remove) every store of this process: a signal handler's last act."""
    for store in list(_OPEN):
        store.close()


def _make_directory(parent: Path | None) -> Path:
    """A new store directory named for this process, after removing those of processes
    that no longer run (killed by SIGKILL, which leaves no chance to clean up)."""
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    try:
        for old in parent.glob(f"{_PREFIX}*"):
            match = re.fullmatch(rf"{_PREFIX}(\d+)-\w+", old.name)
            if match and old.is_dir() and not _running(int(match[1])):
                shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass  # an unreadable parent: the new directory below says whether it is usable
    return Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=parent))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


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
