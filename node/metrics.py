"""What a run measures, and the statistics over it."""

from __future__ import annotations

import math
from collections import Counter

from .history import ExecutionTimes, Proposals, SubmittedTimes, TxBlocks


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation between closest ranks
    (numpy's default), or 0.0 for no values."""
    ordered = sorted(values)
    return percentile_of(len(ordered), ordered.__getitem__, p)


def percentile_of(count: int, nth, p: float) -> float:
    """``percentile`` of ``count`` values that ``nth(i)`` gives in ascending order (a store
    answers without holding them all)."""
    if not count:
        return 0.0
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    pos = (count - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, count - 1)
    low = nth(lo)
    return low + (nth(hi) - low) * (pos - lo)


class _ExecutionTimes(dict):
    """``executed_at`` in memory (a node process; tests): block hash -> when each node
    executed it. The same methods as node/history.py ``ExecutionTimes``."""

    def add(self, block_hash: str, at: int) -> bool:
        """Record one execution; True if it is the block's first."""
        times = self.get(block_hash)
        if times is None:
            self[block_hash] = [at]
            return True
        times.append(at)
        return False

    def count(self, block_hash: str) -> int:
        return len(self.get(block_hash, ()))

    def reply_times(self, f: int) -> dict[str, int]:
        return {h: sorted(times)[f] for h, times in self.items() if len(times) > f}


class _TxBlocks(dict):
    """``tx_blocks`` in memory: tx id -> hashes of the executed blocks holding it (node/history.py ``TxBlocks``)."""

    def add_block(self, block) -> None:
        for r in block.requests:
            self.setdefault(r.digest, []).append(block.hash)


class _Proposals(dict):
    """``proposals`` in memory: (primary, view, seq) -> the digests it sent (node/history.py ``Proposals``)."""

    def add(self, primary: str, view: int, seq: int, digest: str) -> None:
        self.setdefault((primary, view, seq), set()).add(digest)

    def equivocations(self) -> list[tuple[str, int, int, list[str]]]:
        return sorted((p, v, s, sorted(d)) for (p, v, s), d in self.items() if len(d) > 1)


class Metrics:
    """``history``: keep the per-transaction and per-block records (``submitted``,
    ``tx_blocks``, ``executed_at``, ``proposals``) in that store rather than in memory (the
    simulator: node/history.py), so they do not grow with the run; they read the same."""

    def __init__(self, history=None):
        self.history = history
        self.messages: Counter[str] = Counter()  # copies sent, by message type
        self.bytes: Counter[str] = Counter()
        self.lost = 0  # copies the network model dropped (loss, partitions)
        self.lost_to_crash = 0  # copies that reached a crashed node
        self.drops: dict[str, Counter[str]] = {}  # node -> reason -> count
        self.submitted = {} if history is None else SubmittedTimes(history)  # tx id -> submit time (ns)
        # block hash -> execution times across nodes
        self.executed_at = _ExecutionTimes() if history is None else ExecutionTimes(history)
        self.cpu_ns: Counter[str] = Counter()  # node -> modelled busy time
        self.first_executions = 0  # transactions executed by at least one node
        # tx id -> hashes of the executed blocks holding it
        self.tx_blocks = _TxBlocks() if history is None else TxBlocks(history)
        self.retries = 0  # client retransmissions to every node
        self.views_installed: set[int] = set()  # views above 0 some node installed
        # (primary, view, seq) -> digests it sent
        self.proposals = _Proposals() if history is None else Proposals(history)

    def pre_prepare(self, primary: str, view: int, seq: int, digest: str) -> None:
        """A PRE-PREPARE left ``primary``: more than one digest for one (view, seq) is equivocation."""
        self.proposals.add(primary, view, seq, digest)

    def equivocations(self) -> list[tuple[str, int, int, list[str]]]:
        """(primary, view, seq, digests) for each (view, seq) a primary sent two or more blocks for."""
        return self.proposals.equivocations()

    def sent(self, kind: str, size: int, copies: int = 1) -> None:
        self.messages[kind] += copies
        self.bytes[kind] += size * copies

    def drop(self, node: str, reason: str) -> None:
        counter = self.drops.get(node)
        if counter is None:
            counter = self.drops[node] = Counter()
        counter[reason] += 1

    def executed(self, block, at: int) -> None:
        """A node executed ``block`` at ``at``: to its client, a reply for each of its
        transactions. Replies match when they come from the same block."""
        if self.executed_at.add(block.hash, at):
            self.first_executions += len(block.requests)
            self.tx_blocks.add_block(block)

    def executions(self, block_hash: str) -> int:
        """How many nodes executed the block (replies its clients got)."""
        return self.executed_at.count(block_hash)

    def reply_times(self, f: int):
        """Per block hash: when f + 1 nodes had executed that block (a client's quorum of
        matching replies, section 4.1); a mapping (``get``, ``in``, ``[]``)."""
        return self.executed_at.reply_times(f)

    def answered(self, digest: str, f: int) -> bool:
        """PBFT section 4.1: the client holds f + 1 matching replies for its transaction."""
        return any(self.executions(b) > f for b in self.tx_blocks.get(digest, ()))

    def drops_by_reason(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counter in self.drops.values():
            total.update(counter)
        return total
