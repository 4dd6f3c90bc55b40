"""Inputs to ``Replica.step``. Each carries ``now``: time enters only as data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

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


Event = Union[Receive, TimerFired, Executed]
