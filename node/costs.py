"""The cost hook a node is handed: what its own work costs on its clock.

A node charges itself ``sign`` nanoseconds per signature it makes, ``verify`` per
signature it checks and ``execute_tx`` per transaction it executes, and refuses a
client request that would wait longer than ``request_queue`` on its request lane
(0: no limit). The simulator hands it the scenario's CPU model
(``citychain.sim.cpu.CpuCosts``); a real process, whose clock moves on its own
while it works, is handed ``NO_COSTS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Costs(Protocol):
    @property
    def sign(self) -> int: ...

    @property
    def verify(self) -> int: ...

    @property
    def execute_tx(self) -> int: ...

    @property
    def request_queue(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _NoCosts:
    sign: int = 0
    verify: int = 0
    execute_tx: int = 0
    request_queue: int = 0


NO_COSTS: Costs = _NoCosts()
