"""Inputs to ``Replica.step``. Each carries ``now``: time enters only as data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .block import Block
from .messages import Signed


@dataclass(frozen=True, slots=True)
class Receive:
    """An authenticated message: its signature and signer's membership already checked."""

    now: int
    envelope: Signed


@dataclass(frozen=True, slots=True)
class TimerFired:
    now: int
    name: str


@dataclass(frozen=True, slots=True)
class Executed:
    """The caller applied block ``seq`` (an earlier ``Execute`` effect) to its state."""

    now: int
    seq: int
    block_hash: str
    state_root: str


@dataclass(frozen=True, slots=True)
class Adopted:
    """The caller applied a block it fetched from a peer (state transfer), after
    checking its commit certificate and hash link. It is the next block, executed."""

    now: int
    block: Block
    certificate: tuple[Signed, ...]
    state_root: str


Event = Union[Receive, TimerFired, Executed, Adopted]
