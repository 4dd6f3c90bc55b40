"""The request ids a replica has executed, for refusing replays (a request already in
one of its blocks is never ordered again).

A replica on its own keeps a plain set. Many replicas in one process (the simulator)
can share one ``ExecutedIndex``: each request id is stored once, mapped to the id set
of the block that carried it (``Block.ids``, one object shared by every replica), and
each block's id set to the replicas that executed it. Membership answers exactly as a
replica's plain set would, also when replicas executed different blocks (a fork), since
a request id maps to every distinct block id set that carried it.

With an ``archive`` (injected by the caller: this package does no I/O), the index keeps
only its recent blocks in memory and hands older ones to the archive, which must answer
``holds(rid, replica)`` for every block handed to it; so memory does not grow with the
length of a run (issue 13), and a request executed anywhere in a replica's history is
still refused. A block executed again after it was archived (a replica that restarts,
or lags) is simply recent again; the answer is the union of both.
"""

from __future__ import annotations

from itertools import islice


class ExecutedIndex:
    """Shared by the replicas of one process: request id -> the block id set(s) holding
    it, and block id set -> the replicas (numbered by ``executed()``) that executed it."""

    __slots__ = ("blocks", "holders", "archive", "recent", "replicas")

    def __init__(self, archive=None, recent: int = 256):
        self.blocks: dict[str, frozenset | tuple[frozenset, ...]] = {}
        self.holders: dict[frozenset, set[int]] = {}  # oldest first
        self.archive = archive
        self.recent = recent  # with an archive: blocks kept in memory, at least (at most twice as many)
        self.replicas = 0

    def executed(self) -> "ExecutedIds":
        """The executed ids of a new replica (one that restarts is a new one)."""
        self.replicas += 1
        return ExecutedIds(self, self.replicas)

    def add(self, ids: frozenset, replica: int) -> None:
        holders = self.holders.get(ids)
        if holders is None:
            holders = self.holders[ids] = set()
            blocks = self.blocks
            for rid in ids:
                known = blocks.get(rid)
                if known is None:
                    blocks[rid] = ids
                elif type(known) is tuple:
                    blocks[rid] = known + (ids,)
                else:
                    blocks[rid] = (known, ids)
            if self.archive is not None and len(self.holders) > 2 * self.recent:
                self._archive(self.recent)
        holders.add(replica)

    def holds(self, rid: str, replica: int) -> bool:
        known = self.blocks.get(rid)
        if known is not None:
            holders = self.holders
            if type(known) is tuple:
                if any(replica in holders[ids] for ids in known):
                    return True
            elif replica in holders[known]:
                return True
        archive = self.archive
        return archive is not None and archive.holds(rid, replica)

    def _archive(self, count: int) -> None:
        """Hand the oldest ``count`` blocks (their ids and holders) to the archive."""
        blocks, holders = self.blocks, self.holders
        old = [(ids, holders.pop(ids)) for ids in list(islice(holders, count))]
        for ids, _ in old:
            for rid in ids:
                known = blocks[rid]
                if type(known) is tuple:
                    rest = tuple(other for other in known if other != ids)
                    blocks[rid] = rest[0] if len(rest) == 1 else rest
                else:
                    del blocks[rid]
        self.archive.add(old)


class ExecutedIds:
    """A replica's executed request ids, as a set-like view over a shared ``ExecutedIndex``:
    ``rid in done``, ``done |= block.ids``, ``done.update(ids)``."""

    __slots__ = ("index", "replica")

    def __init__(self, index: ExecutedIndex, replica: int):
        self.index = index
        self.replica = replica

    def __contains__(self, rid: str) -> bool:
        return self.index.holds(rid, self.replica)

    def __ior__(self, ids) -> "ExecutedIds":
        ids = ids if type(ids) is frozenset else frozenset(ids)
        if ids:
            self.index.add(ids, self.replica)
        return self

    def update(self, ids) -> None:
        self.__ior__(ids)
