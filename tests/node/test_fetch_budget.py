"""State-transfer answers have a budget per peer (node/sync.py, AnswerBudget): a peer
asking for blocks over and over gets at most FETCH_BLOCKS_PER_S blocks (and
FETCH_BYTES_PER_S bytes) a second, FETCH_BURST_S seconds' worth at once; beyond, its
FETCH is dropped as ``fetch-over-budget`` (docs/messages.md, "Admission and bounds")."""

from __future__ import annotations

from types import SimpleNamespace

from consensus.block import Block, BlockHeader, tx_root
from consensus.messages import Commit
from node.sync import BATCH, FETCH_BLOCKS_PER_S, FETCH_BURST_S, SECOND, AnswerBudget, Syncer
from node.sync_messages import Fetch

from tests.consensus.harness import CHAIN, GENESIS, ROOT0, Net


class _Host:
    def __init__(self, entries):
        self.id = "r1"
        self.ledger = SimpleNamespace(entries=entries)
        self.drops: list[str] = []
        self.metrics = SimpleNamespace(drop=lambda _node, reason: self.drops.append(reason))
        self.answered: list[tuple[str, int]] = []

    def send_signed(self, to, message, t):
        self.answered.append((to, len(message.entries)))
        return t


def _ledger(height: int):
    net = Net(4)
    entries, prev = [], GENESIS
    for h in range(1, height + 1):
        header = BlockHeader(CHAIN, h, prev, tx_root(()), ROOT0, 0, "r0", h)
        block = Block(header, (), header.compute_hash())
        cert = tuple(net.signers[r].sign(Commit(0, h, block.hash)) for r in ("r0", "r2", "r3"))
        entries.append(SimpleNamespace(block=block, certificate=cert))
        prev = block.hash
    return entries


def _fetch(peer):
    return SimpleNamespace(signer=peer, message=Fetch(1, BATCH))


def test_a_peer_fetching_over_and_over_gets_its_budget_and_no_more():
    host = _Host(_ledger(BATCH))
    syncer = Syncer(host, checker=None, timeout=SECOND)
    allowed = FETCH_BLOCKS_PER_S * FETCH_BURST_S // BATCH  # whole answers in one burst
    for _ in range(allowed + 5):
        syncer.on_fetch(_fetch("r2"), 0)
    assert host.answered == [("r2", BATCH)] * allowed
    assert host.drops == ["fetch-over-budget"] * 5
    syncer.on_fetch(_fetch("r3"), 0)  # another peer has its own budget
    assert host.answered[-1] == ("r3", BATCH)
    host.answered.clear()
    for _ in range(20):  # a second later: a second's worth more
        syncer.on_fetch(_fetch("r2"), SECOND)
    assert host.answered == [("r2", BATCH)] * (FETCH_BLOCKS_PER_S // BATCH)


def test_the_budget_counts_bytes_too():
    budget = AnswerBudget(blocks_per_s=1_000, bytes_per_s=1_000, burst_s=1)
    assert budget.spend("p", 0, 1, 600)
    assert not budget.spend("p", 0, 1, 600)  # 1,200 bytes in the first second: over
    assert budget.spend("p", SECOND // 2, 1, 600)
