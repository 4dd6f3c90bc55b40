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


class Metrics:
    """``history``: keep the per-transaction and per-block records (``submitted``,
    ``tx_blocks``, ``executed_at``) in that store rather than in memory (the simulator:
    node/history.py), so they do not grow with the run; they read the same."""

    def __init__(self, history=None):
        self.history = history
        self.messages: Counter[str] = Counter()  # copies sent, by message type
        self.bytes: Counter[str] = Counter()
        self.lost = 0  # copies the network model dropped (loss, partitions)
        self.lost_to_crash = 0  # copies that reached a crashed node
        self.drops: dict[str, Counter[str]] = {}  # node -> reason -> count
        self.submitted = {} if history is None else SubmittedTimes(history)  # tx id -> submit time (ns)
        # block hash -> execution times across nodes
        self.executed_at: dict[str, list[int]] | ExecutionTimes = {} if history is None else ExecutionTimes(history)
        self.cpu_ns: Counter[str] = Counter()  # node -> modelled busy time
        self.first_executions = 0  # transactions executed by at least one node
        self.tx_blocks = {} if history is None else TxBlocks(history)  # tx id -> hashes of the executed blocks holding it
        self.retries = 0  # client retransmissions to every node
        self.views_installed: set[int] = set()  # views above 0 some node installed
        # (primary, view, seq) -> digests it sent
        self.proposals: dict[tuple[str, int, int], set[str]] | Proposals = {} if history is None else Proposals(history)

    def pre_prepare(self, primary: str, view: int, seq: int, digest: str) -> None:
        """A PRE-PREPARE left ``primary``: more than one digest for one (view, seq) is equivocation."""
        if type(self.proposals) is not dict:
            self.proposals.add(primary, view, seq, digest)
            return
        seen = self.proposals.get((primary, view, seq))
        if seen is None:
            self.proposals[(primary, view, seq)] = {digest}
        else:
            seen.add(digest)

    def equivocations(self) -> list[tuple[str, int, int, list[str]]]:
        """(primary, view, seq, digests) for each (view, seq) a primary sent two or more blocks for."""
        if type(self.proposals) is not dict:
            return self.proposals.equivocations()
        return sorted((p, v, s, sorted(d)) for (p, v, s), d in self.proposals.items() if len(d) > 1)

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
        executed_at = self.executed_at
        if type(executed_at) is not dict:
            if executed_at.add(block.hash, at):
                self.first_executions += len(block.requests)
                self.tx_blocks.add_block(block)
            return
        times = executed_at.get(block.hash)
        if times is None:
            times = executed_at[block.hash] = []
            self.first_executions += len(block.requests)
            for r in block.requests:
                self.tx_blocks.setdefault(r.digest, []).append(block.hash)
        times.append(at)

    def executions(self, block_hash: str) -> int:
        """How many nodes executed the block (replies its clients got)."""
        executed_at = self.executed_at
        return len(executed_at[block_hash]) if type(executed_at) is dict else executed_at.count(block_hash)

    def reply_times(self, f: int):
        """Per block hash: when f + 1 nodes had executed that block (a client's quorum of
        matching replies, section 4.1); a mapping (``get``, ``in``, ``[]``)."""
        executed_at = self.executed_at
        if type(executed_at) is not dict:
            return executed_at.reply_times(f)
        return {h: sorted(times)[f] for h, times in executed_at.items() if len(times) > f}

    def answered(self, digest: str, f: int) -> bool:
        """PBFT section 4.1: the client holds f + 1 matching replies for its transaction."""
        return any(self.executions(b) > f for b in self.tx_blocks.get(digest, ()))

    def drops_by_reason(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counter in self.drops.values():
            total.update(counter)
        return total
