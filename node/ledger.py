"""The ledger: hash-chained committed blocks, each with its commit certificate.

Blocks are only ever appended, and only if they extend the head; nothing
rewrites a committed block. ``export`` writes one JSON line per block
(docs/ledger.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from consensus.block import Block
from consensus.encoding import canonical
from consensus.messages import Signed

from .codec import MalformedMessage, decode_block, decode_object
from .execution import BlockOutcome, Receipt, receipts_from
from .history import HistoryStore


class LedgerError(RuntimeError):
    """An attempt to append a block that does not extend the chain."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    block: Block
    certificate: tuple[Signed, ...]
    receipts: tuple[Receipt, ...]

    def __deepcopy__(self, memo) -> "LedgerEntry":
        return self  # committed: never changes, so copies share it


class SpilledEntries:
    """A ledger's entries as a sequence: the last ``window`` in memory, the ones below
    them in ``store``. Indexing, slicing, iterating and ``len`` work as on the list a
    ledger otherwise keeps; reading a spilled entry decodes it from the store
    (node/history.py)."""

    def __init__(self, store: HistoryStore, window: int):
        self.store = store
        self.window = window
        self.ledger = store.new_ledger()
        self.spilled = 0  # heights 1..spilled are in the store
        self.recent: list = []

    def append(self, entry) -> None:
        self.recent.append(entry)
        if len(self.recent) > 2 * self.window:  # spill in batches, keeping at least ``window``
            for old in self.recent[:self.window]:
                self.spilled += 1
                self.store.put(self.ledger, old)
            del self.recent[:self.window]

    def _read(self, start: int, stop: int) -> list[LedgerEntry]:
        return [LedgerEntry(*parts) for parts in self.store.entries(self.ledger, start, stop)]

    def __len__(self) -> int:
        return self.spilled + len(self.recent)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, index):
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            if stop <= start:
                return []
            below = self._read(start + 1, min(stop, self.spilled) + 1) if start < self.spilled else []
            return below + self.recent[max(start - self.spilled, 0):max(stop - self.spilled, 0)]
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("ledger index out of range")
        if index >= self.spilled:
            return self.recent[index - self.spilled]
        return self._read(index + 1, index + 2)[0]

    def __iter__(self):
        chunk = 256
        for start in range(1, self.spilled + 1, chunk):
            yield from self._read(start, min(start + chunk, self.spilled + 1))
        yield from list(self.recent)

    def lines(self, cache):
        """Export lines, spilled ones straight from the store's text."""
        yield from self.store.lines(self.ledger, 1, self.spilled + 1)
        for entry in self.recent:
            yield cache.line(entry)


class Ledger:
    """``history``: keep only the last ``window`` to ``2 × window`` entries in memory and
    the ones below them in that store (the simulator's ledgers: node/history.py);
    ``entries`` is then a sequence reading those back, and a list otherwise."""

    def __init__(self, genesis_hash: str, history: HistoryStore | None = None, window: int = 32):
        self.genesis_hash = genesis_hash
        self.entries: list[LedgerEntry] | SpilledEntries = [] if history is None else SpilledEntries(history, window)
        self.transactions = 0  # in all its blocks

    @property
    def height(self) -> int:
        return len(self.entries)

    @property
    def head_hash(self) -> str:
        return self.entries[-1].block.hash if self.entries else self.genesis_hash

    def append(self, block: Block, certificate: tuple[Signed, ...], receipts: tuple[Receipt, ...],
               outcome: BlockOutcome | None = None) -> None:
        """Append a committed, executed block. ``outcome`` (its writes and the state root
        after it) is for a ledger that stores the world state with its blocks
        (node/sqlite_store.py); this one lives in memory and ignores it."""
        self.check_extends(block)
        self.entries.append(LedgerEntry(block, certificate, receipts))
        self.transactions += len(block.requests)

    def check_extends(self, block: Block) -> None:
        if block.height != self.height + 1:
            raise LedgerError(f"block {block.height} does not follow height {self.height}")
        if block.header.prev_hash != self.head_hash:
            raise LedgerError(f"block {block.height} does not extend head {self.head_hash[:12]}")

    def hashes(self) -> list[str]:
        return [e.block.hash for e in self.entries]

    def export(self, path: Path, cache: "LineCache | None" = None) -> None:
        cache = cache or LineCache()
        entries = self.entries
        lines = entries.lines(cache) if type(entries) is SpilledEntries else (cache.line(e) for e in entries)
        with open(path, "w", encoding="ascii") as out:
            for line in lines:
                out.write(line)
                out.write("\n")


class LineCache:
    """Encodes each shared block and receipt list once when many nodes export the same chain."""

    def __init__(self):
        self._blocks: dict[Block, tuple[str, str]] = {}
        self._receipts: dict[int, tuple[tuple, str]] = {}

    def _block_parts(self, block: Block) -> tuple[str, str]:
        parts = self._blocks.get(block)
        if parts is None:
            parts = (canonical(block.header.to_dict()).decode(),
                     canonical([r.to_dict() for r in block.requests]).decode())
            self._blocks[block] = parts
        return parts

    def _receipts_part(self, receipts: tuple) -> str:
        known = self._receipts.get(id(receipts))
        if known is not None and known[0] is receipts:
            return known[1]
        text = canonical([r.to_dict() for r in receipts]).decode()
        self._receipts[id(receipts)] = (receipts, text)
        return text

    def line(self, entry: LedgerEntry) -> str:
        header, txs = self._block_parts(entry.block)
        cert = canonical([c.to_dict() for c in entry.certificate]).decode()
        # Keys in sorted order, so each line is itself canonical JSON.
        return (f'{{"certificate":{cert},"hash":"{entry.block.hash}","header":{header},'
                f'"receipts":{self._receipts_part(entry.receipts)},"txs":{txs}}}')


def parse_line(line: str, chain_id: str) -> LedgerEntry:
    """The inverse of ``LineCache.line``: one ledger line back to its entry, or
    MalformedMessage (a wrong hash, transaction root, signature encoding or receipt)."""
    try:
        obj = json.loads(line)
    except ValueError:
        raise MalformedMessage("malformed", "not JSON") from None
    if not isinstance(obj, dict):
        raise MalformedMessage("malformed", "a ledger line is an object")
    block = decode_block(obj, chain_id)
    certificate, receipts = obj.get("certificate"), obj.get("receipts")
    if not isinstance(certificate, list) or not isinstance(receipts, list):
        raise MalformedMessage("malformed", "certificate and receipts must be lists")
    receipts = receipts_from(receipts)
    if len(receipts) != len(block.requests) or any(r.tx != q.digest for r, q in zip(receipts, block.requests)):
        raise MalformedMessage("malformed", "receipts do not match the block's transactions")
    return LedgerEntry(block, tuple(decode_object(c, chain_id) for c in certificate), receipts)


def read_ledger(path: Path) -> list[dict]:
    with open(path, encoding="ascii") as f:
        return [json.loads(line) for line in f if line.strip()]
