"""Checking a chain a node did not build itself: hash links, headers, transaction
signatures and commit certificates.

A node runs it on every block it fetches from a peer (state transfer); the
auditor runs the same checker over whole exported ledgers.
"""

from __future__ import annotations

from consensus.block import Block, tx_root
from consensus.messages import Commit, Request, Signed
from consensus.quorum import quorum

from .membership import Membership


class ChainChecker:
    """Checks one node's chain; remembers blocks already checked, as nodes share them."""

    def __init__(self, membership: Membership, genesis: str, replicas: set[str]):
        self.membership = membership
        self.genesis = genesis
        self.replicas = replicas
        self.q = quorum(len(replicas))
        self._good_blocks: set[str] = set()

    def check(self, chain: list[tuple[Block, tuple[Signed, ...]]]) -> list[str]:
        problems: list[str] = []
        prev = self.genesis
        for i, (block, cert) in enumerate(chain, start=1):
            problems.extend(self.check_entry(i, prev, block, cert))
            prev = block.hash
        return problems

    def check_entry(self, i: int, prev: str, block: Block, cert: tuple[Signed, ...]) -> list[str]:
        """The problems of the block at position ``i`` of a chain whose block below hashes to ``prev``."""
        problems: list[str] = []
        h = block.header
        if h.height != i:
            problems.append(f"block at position {i} claims height {h.height}")
        if h.prev_hash != prev:
            problems.append(f"height {i}: prev_hash does not link to the block below")
        problems.extend(f"height {i}: {p}" for p in self.check_block(block))
        problems.extend(f"height {i}: {p}" for p in self.check_certificate(block, cert))
        return problems

    def check_block(self, block: Block) -> list[str]:
        if block.hash in self._good_blocks:
            return []
        problems = []
        if block.header.compute_hash() != block.hash:
            problems.append("block hash does not match its header")
        if tx_root(block.requests) != block.header.tx_root:
            problems.append("tx_root does not match its transactions")
        for r in block.requests:
            reason = self.membership.authenticate(r)
            if reason is not None or not isinstance(r.message, Request):
                problems.append(f"transaction {r.digest[:12]}: {reason or 'not a request'}")
        if not problems:
            self._good_blocks.add(block.hash)
        return problems

    def check_certificate(self, block: Block, cert: tuple[Signed, ...]) -> list[str]:
        return self.check_commits(block.height, block.hash, cert)

    def check_commits(self, height: int, digest: str, cert: tuple[Signed, ...]) -> list[str]:
        """Is ``cert`` a commit certificate for the block ``digest`` at ``height``? (Only
        its header is needed: an auditor holding a block whose transactions were altered
        can still tell that a quorum committed the block the header names.)

        Each signer appears at most once: a certificate naming a signer twice (the same
        COMMIT repeated, or two COMMITs of one replica) is refused, not deduplicated, as
        an honest replica builds one with a COMMIT per signer; so no signer can count
        twice toward the quorum, and a certificate has one spelling."""
        signers = set()
        views = set()
        for c in cert:
            m = c.message
            if not isinstance(m, Commit) or m.seq != height or m.digest != digest:
                return [f"certificate holds a message from {c.signer} that is not a COMMIT for this block"]
            reason = self.membership.authenticate(c)
            if reason is not None:
                return [f"certificate signature by {c.signer}: {reason}"]
            if c.signer not in self.replicas:
                return [f"certificate signer {c.signer} is not a consensus member"]
            if c.signer in signers:
                return [f"certificate names {c.signer} twice"]
            signers.add(c.signer)
            views.add(m.view)
        if len(views) > 1:
            return ["certificate mixes COMMITs of different views"]
        if len(signers) < self.q:
            return [f"certificate has {len(signers)} distinct signers, a quorum is {self.q}"]
        return []
