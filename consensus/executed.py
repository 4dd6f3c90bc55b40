"""The request ids a replica has executed, for refusing replays (a request already in
one of its blocks is never ordered again).

A replica on its own keeps a plain set. Many replicas in one process (the simulator)
can share one ``ExecutedIndex``: each request id is stored once, mapped to the id set
of the block that carried it (``Block.ids``, one object shared by every replica), and
each replica keeps only the id sets of the blocks it executed, one entry per block
rather than one per request. Membership answers exactly as the plain set would, also
when replicas executed different blocks (a fork), since a request id maps to every
distinct block id set that carried it.
"""

from __future__ import annotations


class ExecutedIndex:
    """Shared by the replicas of one process: request id -> the block id set(s) holding it."""

    __slots__ = ("blocks", "registered")

    def __init__(self):
        self.blocks: dict[str, frozenset | tuple[frozenset, ...]] = {}
        self.registered: set[frozenset] = set()

    def register(self, ids: frozenset) -> None:
        if ids in self.registered:
            return
        self.registered.add(ids)
        blocks = self.blocks
        for rid in ids:
            known = blocks.get(rid)
            if known is None:
                blocks[rid] = ids
            elif type(known) is tuple:
                blocks[rid] = known + (ids,)
            else:
                blocks[rid] = (known, ids)

    def executed(self) -> "ExecutedIds":
        return ExecutedIds(self)


class ExecutedIds:
    """A replica's executed request ids, as a set-like view over a shared ``ExecutedIndex``:
    ``rid in done``, ``done |= block.ids``, ``done.update(ids)``."""

    __slots__ = ("index", "mine")

    def __init__(self, index: ExecutedIndex):
        self.index = index
        self.mine: set[frozenset] = set()  # the id sets of the blocks this replica executed

    def __contains__(self, rid: str) -> bool:
        known = self.index.blocks.get(rid)
        if known is None:
            return False
        if type(known) is tuple:
            mine = self.mine
            return any(ids in mine for ids in known)
        return known in self.mine

    def __ior__(self, ids) -> "ExecutedIds":
        ids = ids if type(ids) is frozenset else frozenset(ids)
        if ids:
            self.index.register(ids)
            self.mine.add(ids)
        return self

    def update(self, ids) -> None:
        self.__ior__(ids)
