"""Blocks: the proposal a PRE-PREPARE carries and the unit the ledger stores.

The block hash is SHA-256 over the canonical encoding of the header (docs/ledger.md).
``state_root`` is the world-state root *after executing every block below this one*
(like CometBFT's app_hash): the primary knows it when it proposes, so the whole
header, and so the hash that COMMIT messages sign, is fixed before agreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .encoding import canonical, sha256_hex
from .merkle import merkle_root
from .envelope import Signed


# The signed bytes of a block's requests, summed, at most (node/codec.py refuses a larger
# block as ``block-too-large``). The primary never proposes more, and a replica refuses a
# request that could never fit in a block (``oversized-request``): one such request would
# otherwise be the first of every proposal, and every proposal would be refused.
MAX_BLOCK_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int
    prev_hash: str
    tx_root: str
    state_root: str
    view: int
    proposer: str
    timestamp: int  # virtual (or wall) nanoseconds when the primary proposed it

    def to_dict(self) -> dict:
        return {"chain_id": self.chain_id, "height": self.height, "prev_hash": self.prev_hash,
                "tx_root": self.tx_root, "state_root": self.state_root, "view": self.view,
                "proposer": self.proposer, "timestamp": self.timestamp}

    def compute_hash(self) -> str:
        return sha256_hex(canonical(self.to_dict()))


def tx_root(requests: tuple[Signed, ...]) -> str:
    """RFC 6962 Merkle root over each transaction's signed bytes, in block order."""
    return merkle_root([r.data for r in requests]).hex()


@dataclass(frozen=True, slots=True, eq=False)
class Block:
    header: BlockHeader
    requests: tuple[Signed, ...]
    hash: str
    # The requests' ids, derived once: every replica consults them for every block.
    ids: frozenset[str] = field(default=None, repr=False)

    def __post_init__(self):
        if self.ids is None:
            object.__setattr__(self, "ids", frozenset(r.digest for r in self.requests))

    def __deepcopy__(self, memo) -> "Block":
        return self  # immutable: copies share it

    @classmethod
    def create(cls, header: BlockHeader, requests: tuple[Signed, ...]) -> "Block":
        """Build a block, checking that the header's tx_root matches its transactions."""
        if header.tx_root != tx_root(requests):
            raise ValueError(f"block {header.height}: tx_root does not match its transactions")
        return cls(header, requests, header.compute_hash())

    @property
    def height(self) -> int:
        return self.header.height

    def to_dict(self) -> dict:
        """The block as the wire and the ledger carry it (docs/ledger.md)."""
        return {"hash": self.hash, "header": self.header.to_dict(), "txs": [r.to_dict() for r in self.requests]}
