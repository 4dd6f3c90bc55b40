"""Admission: how much a node takes from each sender before it does any expensive work.

A flooding peer must not exhaust a node's memory or CPU. Before a message is
verified (an Ed25519 check) or handed to the replica, the node asks ``admit``:

- **per sender**, a token bucket (written as GCRA, the "virtual scheduling" form:
  one integer per sender, the time its bucket is full again): a sender may send
  ``burst`` messages at once and ``rate`` a second after that; beyond, its messages
  are dropped (``rate-limited``). Only senders the node can name are tracked (the
  genesis members), so the table is bounded by the membership.
- **in total**, a bound on the work queued: in the simulator the node's modelled CPU
  backlog (messages admitted but not yet worked off), at most ``max_backlog_ms``;
  beyond, a message is dropped (``backlog-full``). (A node process bounds its queue
  in messages instead: its inbox, ``MAX_INBOX``.)

What is admitted while the node is busy waits in its sender's own queue, at most
``queue`` messages, and the queues are served in turn (node/fairqueue.py).

Deterministic: time is the ``now`` the caller passes (virtual time in the simulator,
the loop's monotonic clock in a process), in integer nanoseconds; no wall clock, no
randomness. The defaults are far above what honest replicas send (docs/messages.md,
"Admission"): PBFT's retransmissions cover an honest message lost to a limit anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

SECOND = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Limits:
    rate: int = 5_000  # messages a second, per sender, sustained
    burst: int = 5_000  # messages a sender may send at once (the bucket's size)
    max_backlog_ms: int = 10_000  # work queued at the node (simulator: modelled CPU backlog); 0: no bound
    queue: int = 1_000  # messages one sender may have waiting while the node is busy (node/fairqueue.py)
    shared_ms: int = 5  # work taken first come, first served; beyond, senders queue and are served in turn

    def __post_init__(self):
        if self.rate < 1 or self.burst < 1 or self.max_backlog_ms < 0 or self.queue < 1 or self.shared_ms < 0:
            raise ValueError("rate, burst and queue must be >= 1, max_backlog_ms and shared_ms >= 0")


DEFAULT_LIMITS = Limits()


class Admission:
    """Per-sender token buckets and a total backlog bound (see the module docstring)."""

    __slots__ = ("limits", "interval", "tolerance", "max_backlog", "full_at")

    def __init__(self, limits: Limits = DEFAULT_LIMITS):
        self.limits = limits
        self.interval = SECOND // limits.rate  # ns of credit one message costs
        self.tolerance = self.interval * (limits.burst - 1)  # how far ahead of now a bucket may be drawn
        self.max_backlog = limits.max_backlog_ms * 1_000_000
        self.full_at: dict[str, int] = {}  # sender -> when its bucket is full again (GCRA's TAT)

    def admit(self, sender: str, now: int, backlog: int = 0) -> str | None:
        """None if a message from ``sender`` arriving at ``now`` (ns) may be worked on,
        else the drop reason. ``backlog``: ns of work already queued at the node."""
        if self.max_backlog and backlog > self.max_backlog:
            return "backlog-full"
        full_at = self.full_at.get(sender, now)
        if full_at < now:
            full_at = now
        if full_at - now > self.tolerance:
            return "rate-limited"
        self.full_at[sender] = full_at + self.interval
        return None
