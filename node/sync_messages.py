"""The two messages of state transfer (node-level: the replica never sees them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from consensus.block import Block
from consensus.messages import Signed


@dataclass(frozen=True, slots=True)
class Fetch:
    """Ask a peer for committed blocks from ``from_height`` up to ``to_height``."""

    KIND: ClassVar[str] = "fetch"
    from_height: int
    to_height: int

    def __post_init__(self):
        if type(self.from_height) is not int or type(self.to_height) is not int or not 1 <= self.from_height:
            raise ValueError("fetch heights must be integers >= 1")

    def body(self) -> dict:
        return {"type": self.KIND, "from_height": self.from_height, "to_height": self.to_height}


@dataclass(frozen=True, slots=True)
class Blocks:
    """Committed blocks with their commit certificates. Only the hashes are signed:
    each block proves itself through its certificate."""

    KIND: ClassVar[str] = "blocks"
    entries: tuple[tuple[Block, tuple[Signed, ...]], ...]

    def body(self) -> dict:
        return {"type": self.KIND, "hashes": [block.hash for block, _ in self.entries]}
