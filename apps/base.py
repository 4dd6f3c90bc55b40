"""What every application is given and returns. Apps never import ``node``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True, slots=True)
class Tx:
    """A transaction as an app sees it: who sent it (from the client's certificate) and what."""

    id: str
    client: str
    org: str
    role: str
    op: str
    args: dict
    height: int
    timestamp: int  # the block's timestamp: the same on every node


class Rejected(Exception):
    """Raised by an app to fail a transaction; ``reason`` is recorded in its receipt."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StateView(Protocol):
    """The app's own slice of the world state. Writes land only if the tx succeeds."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def put(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


class App(Protocol):
    NAME: ClassVar[str]
    OPS: ClassVar[tuple[str, ...]]

    def execute(self, tx: Tx, state: StateView) -> dict | None:
        """Apply ``tx`` or raise ``Rejected``; may return a small result for the receipt."""
        ...
