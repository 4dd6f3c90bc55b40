"""Observer nodes: members with a certificate but no vote.

An observer (a department that wants a full, verified copy of the chain, or an
auditor) takes no part in consensus: broadcasts do not reach it. It pulls
committed blocks from consensus nodes through state transfer, checking every
commit certificate and hash link, and executes them, so it holds the same state
as the voters and can answer queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.effects import Drop


@dataclass(frozen=True)
class ObserverConfig:
    chain_id: str
    replicas: tuple[str, ...]  # the consensus members it fetches from
    me: str


class ObserverReplica:
    """Stands where a replica would in a ``Node``: it accepts adopted blocks and nothing else."""

    def __init__(self, config: ObserverConfig):
        self.config = config
        self.view = self.installed_view = 0
        self.active = True
        self.stable_proof = ()
        self.low = 0

    def step(self, event) -> list:
        """Adopted blocks need no answer; it runs no timers and sees no consensus messages."""
        return []

    def deliver(self, env, now: int) -> list:
        return [Drop("observer-does-not-vote", env)]
