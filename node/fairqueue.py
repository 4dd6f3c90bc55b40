"""Fair queuing: while a node is busy, each sender's messages wait in their own queue.

A node's CPU is one server. Served first come, first served, f faulty members each
within their token bucket (node/admission.py) could keep it busy more than all the
time and hold every honest message behind theirs. So, as BFT nodes do with one queue
per peer (CometBFT's per-channel send queues, Linux's fq_codel), a message that
arrives while the node has more than ``window`` of work ahead waits in its sender's
queue (less than that is taken first come, first served, as a real node's socket
buffer would: it costs no scheduling, and bounds what a flood adds to an honest
message's wait to ``window`` plus its turn), and the queues are served
in turn by deficit round robin weighted by the work each message turned out to cost:
a sender whose turn comes with credit left has its next message served, and pays
what it cost; with none left it gets ``quantum`` more and goes to the back. A new
sender joins at the back with one quantum, less what it still owes: a sender whose
queue empties keeps its debt (else one whose expensive messages arrive one at a time
would be served a whole message every round), until nobody waits. A flood then delays only its sender, and
an honest message waits at most about one message of every other busy sender.

The sender is the peer the message came from (the link), never the signer the
envelope claims. Bounded: ``per_sender`` messages per queue (beyond, dropped as
``sender-queue-full``) and ``max_held`` in all (``backlog-full``, the same bound as
the node's modelled backlog: each held message is at least one verification).

Deterministic: senders are served in the order they first queued, then in turn; no
dict order, no hashing, integer nanoseconds.
"""

from __future__ import annotations

from collections import deque

TURN_TIMER = "turn"  # the node's wake-up when its CPU is free and messages wait


class Turns:
    """Per-sender queues served by deficit round robin (see the module docstring)."""

    __slots__ = ("quantum", "per_sender", "max_held", "window", "queues", "order", "credit", "held", "armed",
                 "serving")

    def __init__(self, quantum: int, per_sender: int, max_held: int, window: int = 0):
        self.quantum = quantum if quantum > 0 else 1  # ns of work a turn grants
        self.per_sender = per_sender
        self.max_held = max_held  # 0: no total bound
        self.window = window  # ns of work taken first come, first served before senders queue
        self.queues: dict[str, deque] = {}  # sender -> its waiting messages (only senders with some)
        self.order: deque[str] = deque()  # senders with messages waiting, the one whose turn it is first
        self.credit: dict[str, int] = {}  # sender -> ns of work it may still use this turn
        self.held = 0  # messages waiting, all senders
        self.armed = False  # a TURN_TIMER is set
        self.serving = None  # the message being served (a trace names it in a drop)

    def wake_at(self, busy_until: int, now: int) -> int:
        """When to serve again, the CPU being busy until ``busy_until``: once half the window
        is free (so one wake-up serves half a window of messages, not one), never before now."""
        at = busy_until - self.window // 2
        return at if at > now else now

    def hold(self, sender: str, item) -> str | None:
        """Queue ``item`` from ``sender``: None, or the reason it was dropped."""
        if self.max_held and self.held >= self.max_held:
            return "backlog-full"
        queue = self.queues.get(sender)
        if queue is None:
            queue = self.queues[sender] = deque()
            self.order.append(sender)
            debt = self.credit.get(sender, 0)  # what its last messages cost beyond its turns, if any
            self.credit[sender] = self.quantum + (debt if debt < 0 else 0)
        elif len(queue) >= self.per_sender:
            return "sender-queue-full"
        queue.append(item)
        self.held += 1
        return None

    def next(self) -> tuple[str, object]:
        """The sender whose turn it is and its oldest message (``held`` must be > 0)."""
        order, credit = self.order, self.credit
        while True:
            sender = order[0]
            if credit[sender] > 0:
                break
            credit[sender] += self.quantum
            order.rotate(-1)
        queue = self.queues[sender]
        item = queue.popleft()
        self.held -= 1
        if not queue:  # it leaves the round; it rejoins at the back with a quantum less its debt
            del self.queues[sender]
            order.popleft()
            if not self.held:
                credit.clear()  # nobody waits: no sender owes the others a turn
        return sender, item

    def charge(self, sender: str, cost: int) -> None:
        """``sender``'s message cost ``cost`` ns of work: taken from its credit."""
        if sender in self.credit:  # (it may have left the round: what it owes is kept until it rejoins)
            self.credit[sender] -= cost

    def clear(self) -> None:
        """A crash: what waited is lost with the process's memory."""
        self.queues.clear()
        self.order.clear()
        self.credit.clear()
        self.held = 0
        self.armed = False
        self.serving = None
