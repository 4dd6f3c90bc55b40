"""The simulator's CPU model: what a node's work costs, in nanoseconds of virtual time.

Built from the scenario's ``cpu:`` block and handed to every simulated node as its
cost hook (``node.costs.Costs``); the node itself never imports the simulator."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CpuCosts:
    sign: int = 0
    verify: int = 0
    execute_tx: int = 0
    request_queue: int = 0  # longest wait on the request lane before a request is refused (0: no limit)

    @classmethod
    def from_spec(cls, spec) -> "CpuCosts":
        return cls(round(spec.sign_us * 1000), round(spec.verify_us * 1000), round(spec.execute_tx_us * 1000),
                   round(spec.request_queue_ms * 1e6))
