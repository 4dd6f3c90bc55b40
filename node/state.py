"""World state: a key-value map with a Merkle root that every block header commits to.

Keys hash into 256 buckets; a bucket's hash covers its sorted entries and the root
is the RFC 6962 Merkle hash over the bucket hashes. Only buckets written since the
last root are rehashed.
"""

from __future__ import annotations

import hashlib
import json

from consensus.encoding import canonical
from consensus.merkle import merkle_root

BUCKETS = 256
_EMPTY_BUCKET = hashlib.sha256(b"{}").digest()


def bucket_of(key: str) -> int:
    return hashlib.sha256(key.encode()).digest()[0]


class WorldState:
    def __init__(self):
        self._buckets: list[dict[str, str]] = [{} for _ in range(BUCKETS)]
        self._hashes: list[bytes] = [_EMPTY_BUCKET] * BUCKETS
        self._dirty: set[int] = set()
        self._root: str | None = None

    def get(self, key: str):
        text = self._buckets[bucket_of(key)].get(key)
        return None if text is None else json.loads(text)

    def apply(self, writes: tuple[tuple[str, str | None], ...], buckets: tuple[int, ...] | None = None) -> None:
        """Apply (key, canonical JSON text or None to delete) pairs; ``buckets``, if
        given, are the keys' buckets computed already (by whoever executed the block)."""
        for i, (key, text) in enumerate(writes):
            b = buckets[i] if buckets is not None else bucket_of(key)
            if text is None:
                self._buckets[b].pop(key, None)
            else:
                self._buckets[b][key] = text
            self._dirty.add(b)
        if writes:
            self._root = None

    def successor(self, writes: tuple[tuple[str, str | None], ...],
                  buckets: tuple[int, ...] | None = None) -> "WorldState":
        """A new state: this one with ``writes`` applied, this one unchanged. Untouched
        buckets are shared (copy on write), so the simulator's nodes can all hold one
        state per block instead of a copy each (node/execution.py)."""
        new = WorldState.__new__(WorldState)
        new._buckets = list(self._buckets)
        new._hashes = list(self._hashes)
        new._dirty = set(self._dirty)
        new._root = self._root
        own: set[int] = set()
        table = new._buckets
        for i, (key, text) in enumerate(writes):
            b = buckets[i] if buckets is not None else bucket_of(key)
            if b not in own:
                table[b] = dict(table[b])
                own.add(b)
            if text is None:
                table[b].pop(key, None)
            else:
                table[b][key] = text
        new._dirty |= own
        if writes:
            new._root = None
        return new

    def set_known_root(self, root: str) -> None:
        """Adopt a root computed elsewhere for this exact state (the simulator's execution memo).

        The dirty buckets stay dirty, so a later ``root()`` still rehashes them.
        """
        self._root = root

    def root(self) -> str:
        if self._root is None:
            for b in self._dirty:
                self._hashes[b] = hashlib.sha256(canonical(self._buckets[b])).digest()
            self._dirty.clear()
            self._root = merkle_root(self._hashes).hex()
        return self._root

    def items(self, prefix: str = ""):
        for bucket in self._buckets:
            for key, text in bucket.items():
                if key.startswith(prefix):
                    yield key, json.loads(text)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets)


def empty_state_root() -> str:
    return WorldState().root()
