"""State transfer: a node that is behind fetches committed blocks from its peers.

Every fetched block is checked before it is applied: it must extend this node's
chain (height and prev_hash), hash to its header, and carry a commit certificate
of a quorum of distinct consensus members' valid COMMIT signatures for exactly
that block. A peer that sends anything else is simply not believed; the node
asks the next peer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from consensus.block import Block
from consensus.messages import Signed

from .checker import ChainChecker
from .codec import MAX_MESSAGE_BYTES
from .sync_messages import Blocks, Fetch

if TYPE_CHECKING:
    from consensus.replica import Replica

    from .costs import Costs
    from .ledger import Ledger
    from .metrics import Metrics
    from .transport import Transport

SYNC_TIMER = "sync"
TICK_TIMER = "sync-tick"
BATCH = 50  # blocks per response
# The bytes of blocks and certificates per response: what a peer's decoder takes
# (node/codec.py, MAX_MESSAGE_BYTES) less room for the envelope; at least one block.
ANSWER_BYTES = MAX_MESSAGE_BYTES - (1 << 20)
SECOND = 1_000_000_000
# What one peer's FETCHes may take from this node: answering costs reading and sending
# blocks, and a faulty peer could ask for the same blocks over and over. An honest node
# catching up asks one peer for BATCH blocks at a time, each after the last answer.
FETCH_BLOCKS_PER_S = 500
FETCH_BYTES_PER_S = 64 << 20
FETCH_BURST_S = 2  # a peer may take this many seconds' worth at once


def entry_size(entry) -> int:
    """The bytes a ledger entry (a block and its commit certificate) takes in an answer, about."""
    return 1024 + sum(r.size for r in entry.block.requests) + sum(c.size for c in entry.certificate)


def answer(ledger, from_height: int, to_height: int) -> tuple[tuple, int]:
    """The (block, certificate) entries a FETCH is answered with, and their size: from
    ``from_height``, at most BATCH of them and ANSWER_BYTES on the wire (or else a peer's
    decoder refuses the whole answer as oversized, and a node that fell behind never
    catches up)."""
    last = min(to_height, from_height + BATCH - 1, len(ledger))
    out, size = [], 0
    for e in ledger[from_height - 1:last]:
        grown = size + entry_size(e)
        if out and grown > ANSWER_BYTES:
            break
        size = grown
        out.append((e.block, e.certificate))
    return tuple(out), size


class AnswerBudget:
    """Per peer, the blocks and bytes this node answers FETCHes with: at most
    ``blocks_per_s`` blocks and ``bytes_per_s`` bytes a second, ``burst_s`` seconds' worth
    at once (GCRA, as node/admission.py: one integer per peer, the time its budget is full
    again; an answer costs the longer of its two times). Peers are authenticated members,
    so the table is bounded by the membership."""

    __slots__ = ("blocks_per_s", "bytes_per_s", "tolerance", "full_at")

    def __init__(self, blocks_per_s: int = FETCH_BLOCKS_PER_S, bytes_per_s: int = FETCH_BYTES_PER_S,
                 burst_s: int = FETCH_BURST_S):
        self.blocks_per_s = blocks_per_s
        self.bytes_per_s = bytes_per_s
        self.tolerance = burst_s * SECOND
        self.full_at: dict[str, int] = {}

    def spend(self, peer: str, now: int, blocks: int, size: int) -> bool:
        """True (and charged) if ``peer`` may be sent ``blocks`` blocks of ``size`` bytes at ``now``."""
        full_at = self.full_at.get(peer, now)
        if full_at < now:
            full_at = now
        full_at += max(blocks * SECOND // self.blocks_per_s, size * SECOND // self.bytes_per_s)
        if full_at - now > self.tolerance:
            return False
        self.full_at[peer] = full_at
        return True


class Host(Protocol):
    """What a Syncer uses of the node it works for (``node.node.Node``, which
    imports this module: sync never imports node)."""

    id: str
    replica: Replica
    ledger: Ledger
    transport: Transport
    metrics: Metrics
    cpu: Costs

    def send_signed(self, to: str, message, t: int) -> int: ...

    def adopt(self, block: Block, certificate: tuple[Signed, ...], t: int) -> int: ...


class Syncer:
    """Fetches what the replica asks for, and pulls from one peer per ``interval``
    (anti-entropy, as FISCO BCOS's block sync or Fabric's gossip pull): a node that
    missed the last blocks before the chain went quiet still hears of them."""

    def __init__(self, node: Host, checker: ChainChecker, timeout: int, interval: int = 0):
        self.node = node
        self.checker = checker
        self.timeout = timeout
        self.interval = interval
        self.ticks = 0
        self.idle_ticks = 0  # ticks in a row that found nothing: the next one waits longer
        self.height_at_tick = 0
        self.target = 0  # 0: nothing wanted; -1: as far as peers have (after a restart)
        self.peers: tuple[str, ...] = ()
        self.attempt = 0
        self.asked: str | None = None
        self.fetched_blocks = 0
        self.budget = AnswerBudget()

    @property
    def behind(self) -> bool:
        return self.target == -1 or self.target > self.node.ledger.height

    def want(self, target: int, peers: tuple[str, ...], t: int) -> int:
        """Fetch up to ``target`` (-1: until peers have no more) from ``peers``."""
        if target != -1 and target <= self.node.ledger.height:
            return t
        if target == -1 or target > self.target:
            self.target = target
        if peers:
            self.peers = peers
        if self.asked is None:
            t = self._ask(t)
        return t

    def _ask(self, t: int) -> int:
        node = self.node
        if not self.peers or not self.behind:
            self.asked = None
            return t
        peer = self.peers[self.attempt % len(self.peers)]
        start = node.ledger.height + 1
        end = start + BATCH - 1 if self.target == -1 else min(self.target, start + BATCH - 1)
        t = node.send_signed(peer, Fetch(start, end), t)
        self.asked = peer
        node.transport.start_timer(node.id, SYNC_TIMER, t + self.timeout)
        return t

    def start(self, t: int) -> None:
        """Arm the anti-entropy tick (at creation and after a restart)."""
        if self.interval:
            node = self.node
            replicas = node.replica.config.replicas
            index = replicas.index(node.id) if node.id in replicas else sum(map(ord, node.id)) % len(replicas)
            stagger = self.interval * index // len(replicas)
            node.transport.start_timer(node.id, TICK_TIMER, t + self.interval + stagger)

    def on_tick(self, t: int) -> int:
        node = self.node
        if node.ledger.height > self.height_at_tick:
            self.idle_ticks = 0  # the chain moves: keep listening closely
        else:
            self.idle_ticks = min(self.idle_ticks + 1, 3)
        self.height_at_tick = node.ledger.height
        if self.asked is None and self.target > 0 and not self.behind:
            self.target = 0  # reached by consensus meanwhile, not by a fetch: pull again
        if self.asked is None and self.target == 0:
            others = [p for p in node.replica.config.replicas if p != node.id]
            peer = others[self.ticks % len(others)]
            self.ticks += 1
            t = self.want(-1, (peer,), t)
        node.transport.start_timer(node.id, TICK_TIMER, t + (self.interval << self.idle_ticks))
        return t

    def on_timer(self, t: int) -> int:
        """The peer did not answer (crashed, partitioned, lying): ask the next one, from
        every other replica if we had only the one (anti-entropy picks one peer a tick, and
        a peer that withholds blocks must not hold us for good)."""
        if len(self.peers) <= 1:
            node = self.node
            self.peers = tuple(p for p in node.replica.config.replicas if p != node.id)
        self.attempt += 1
        self.asked = None
        return self._ask(t)

    def on_fetch(self, env: Signed, t: int) -> int:
        m: Fetch = env.message
        node = self.node
        # the size as answer() measured it: the entries are not read again (a simulated
        # ledger's older ones come from the run's history store)
        entries, size = answer(node.ledger.entries, m.from_height, m.to_height)
        if not self.budget.spend(env.signer, t, len(entries), size):
            node.metrics.drop(node.id, "fetch-over-budget")  # it asks the next peer after its timeout
            return t
        return node.send_signed(env.signer, Blocks(entries), t)

    def on_blocks(self, env: Signed, t: int) -> int:
        node = self.node
        if env.signer != self.asked:
            node.metrics.drop(node.id, "unsolicited-blocks")
            return t
        applied = 0
        for block, certificate in env.message.entries:
            if block.height <= node.ledger.height:
                continue
            problems = self._check(block, certificate)
            t += node.cpu.verify * len(certificate)
            if problems:
                node.metrics.drop(node.id, f"bad-fetched-block: {problems[0]}")
                break
            t = node.adopt(block, certificate, t)
            applied += 1
        self.fetched_blocks += applied
        if applied == 0 and self.target != -1:
            # Nothing usable (the peer is behind too, or lied): leave the timer
            # running, so the next peer is asked after it, not in a storm.
            return t
        node.transport.cancel_timer(node.id, SYNC_TIMER)
        self.asked = None
        if applied == 0:
            self.target = 0  # after a restart: peers have nothing newer, so caught up
            return t
        if self.behind:
            return self._ask(t)
        self.target = 0
        return t

    def _check(self, block: Block, certificate: tuple[Signed, ...]) -> list[str]:
        ledger = self.node.ledger
        if block.height != ledger.height + 1:
            return [f"block {block.height} does not follow height {ledger.height}"]
        if block.header.prev_hash != ledger.head_hash:
            return ["prev_hash does not link to this node's head"]
        return self.checker.check_block(block) + self.checker.check_certificate(block, certificate)
