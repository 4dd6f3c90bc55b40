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
from .execution import BlockOutcome, Receipt
from .history import HistoryStore, SpilledEntries


class LedgerError(RuntimeError):
    """An attempt to append a block that does not extend the chain."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    block: Block
    certificate: tuple[Signed, ...]
    receipts: tuple[Receipt, ...]

    def __deepcopy__(self, memo) -> "LedgerEntry":
        return self  # committed: never changes, so copies share it


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


def receipts_from(items: list) -> tuple[Receipt, ...]:
    """Receipts from their JSON objects (``Receipt.to_dict``), or MalformedMessage."""
    try:
        return tuple(Receipt(r["tx"], r["ok"], r.get("reason", ""), r.get("result")) for r in items)
    except (TypeError, KeyError, AttributeError) as exc:
        raise MalformedMessage("malformed", f"receipt: {exc!r}") from None


def read_ledger(path: Path) -> list[dict]:
    with open(path, encoding="ascii") as f:
        return [json.loads(line) for line in f if line.strip()]
