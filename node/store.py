"""Where a node keeps its durable protocol state (consensus/durable.py).

``write`` must make a record durable before it returns: the node performs the
replica's effects in order, so every message after a ``Persist`` leaves only
once the record is safe. In the simulator a crash loses the process, not this
object, which stands for the node's disk; a node process stores the same
records in SQLite (the broker mode).
"""

from __future__ import annotations

from consensus.durable import DurableState, Record


class MemoryStore:
    """The simulator's disk: records survive a simulated crash, not the Python process."""

    def __init__(self):
        self.state = DurableState()
        self.writes = 0

    def write(self, record: Record) -> None:
        self.state.apply(record)
        self.writes += 1

    def read(self) -> DurableState:
        return self.state
