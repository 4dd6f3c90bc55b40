"""Outputs of ``Replica.step``: what the caller must do, in list order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .block import Block
from .durable import Record
from .messages import Message, Signed


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Sign ``message`` and send it to every other replica, and back to this one."""

    message: Message


@dataclass(frozen=True, slots=True)
class Send:
    """Sign ``message`` and send it to replica ``to`` only."""

    to: str
    message: Message


@dataclass(frozen=True, slots=True)
class Forward:
    """Pass an already signed envelope (a client request) on to replica ``to``."""

    to: str
    envelope: Signed


@dataclass(frozen=True, slots=True)
class StartTimer:
    """(Re)start the named timer; a running timer of that name is replaced."""

    name: str
    delay: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class Execute:
    """Apply committed block to the state, in sequence order; answer with ``Executed``.

    ``certificate`` is the quorum of signed COMMITs that committed it.
    """

    block: Block
    certificate: tuple[Signed, ...]


@dataclass(frozen=True, slots=True)
class CatchUp:
    """This replica is behind: fetch committed blocks up to ``target`` (with their
    certificates) from ``peers``, check them, apply them and answer with ``Adopted``.
    ``target`` -1 means "whatever the peers have beyond this replica's height"."""

    target: int
    peers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Persist:
    """Write ``record`` to the node's durable protocol state (consensus/durable.py)
    before performing any later effect of the same list: the sends after it depend on it."""

    record: Record


@dataclass(frozen=True, slots=True)
class Drop:
    """The replica refused an input; the caller counts it under ``reason``."""

    reason: str
    envelope: Signed | None = None


Effect = Union[Broadcast, Send, Forward, StartTimer, CancelTimer, Execute, CatchUp, Persist, Drop]
