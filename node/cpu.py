"""Modelled CPU cost of a node's work, in nanoseconds of (virtual) time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CpuCosts:
    sign: int = 0
    verify: int = 0
    execute_tx: int = 0

    @classmethod
    def from_microseconds(cls, sign_us: float, verify_us: float, execute_tx_us: float) -> "CpuCosts":
        return cls(round(sign_us * 1000), round(verify_us * 1000), round(execute_tx_us * 1000))
