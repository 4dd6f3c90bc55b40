"""Inputs to ``Replica.step``. Each carries ``now``: time enters only as data.

Events are immutable named tuples: the simulator builds one per delivered message,
so they must be cheap to make.
"""

from __future__ import annotations

from typing import NamedTuple, Union

from .block import Block
from .messages import Signed


class Receive(NamedTuple):
    """An authenticated message: its signature and signer's membership already checked."""

    now: int
    envelope: Signed


class TimerFired(NamedTuple):
    now: int
    name: str


class Executed(NamedTuple):
    """The caller applied block ``seq`` (an earlier ``Execute`` effect) to its state."""

    now: int
    seq: int
    block_hash: str
    state_root: str


class Adopted(NamedTuple):
    """The caller applied a block it fetched from a peer (state transfer), after
    checking its commit certificate and hash link. It is the next block, executed."""

    now: int
    block: Block
    certificate: tuple[Signed, ...]
    state_root: str


class Restarted(NamedTuple):
    """The replica was just rebuilt from its durable state (``Replica.restore``): a
    restarted process has no timers and lost what was in flight, so the replica
    re-arms what it needs and repeats what its peers may be waiting for."""

    now: int


Event = Union[Receive, TimerFired, Executed, Adopted, Restarted]
