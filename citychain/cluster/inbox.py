"""A node process's inbox: one queue per sender, served in turn.

The MQTT client library hands every received message to one queue, and the node
takes them one by one. First come, first served, a member flooding within its token
bucket would put its messages ahead of every honest one. Here each sender (the
topic's last level, ``<src>``, which the broker's ACL vouches for) has its own queue,
and ``get`` takes one message from each sender in turn (round robin: a process
cannot know what a message will cost before decoding it), so a flood delays only its
sender. Bounded: ``per_sender`` messages a sender (beyond, dropped and counted as
``sender-queue-full``) and ``maxsize`` in all: a message that finds the inbox full makes
room by dropping the newest message of the longest queue (or, its sender's being the
longest, is dropped itself), counted as ``backlog-full``, so f senders each within
``per_sender`` cannot fill the inbox against an honest one.

An ``asyncio.Queue`` whose storage hooks (``_init``, ``_put``, ``_get``) keep the
per-sender queues, so the library's ``put_nowait``/``get`` and its ``maxsize`` work
unchanged. Senders are served in the order they first queued, then in turn.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable

PER_SENDER = 2_000  # messages one sender may have waiting (its burst: a process admits no more at once)


def sender_of(item) -> str:
    """The sender of a received message: its topic's last level."""
    topic = item.topic.value
    return topic[topic.rfind("/") + 1:]


class _Turns:
    """The per-sender queues; ``len`` is the total (``asyncio.Queue.qsize`` reads it)."""

    __slots__ = ("queues", "order", "total")

    def __init__(self):
        self.queues: dict[str, deque] = {}  # sender -> its waiting messages (only senders with some)
        self.order: deque[str] = deque()  # senders with messages waiting, the next to be served first
        self.total = 0

    def __len__(self) -> int:
        return self.total

    def put(self, sender: str, item) -> None:
        queue = self.queues.get(sender)
        if queue is None:
            queue = self.queues[sender] = deque()
            self.order.append(sender)
        queue.append(item)
        self.total += 1

    def take(self):
        sender = self.order.popleft()
        queue = self.queues[sender]
        item = queue.popleft()
        self.total -= 1
        if queue:
            self.order.append(sender)  # served: to the back of the line
        else:
            del self.queues[sender]
        return item

    def push_out(self, sender: str) -> bool:
        """Full: make room for a message from ``sender`` by dropping the newest message of
        the longest queue, if that is longer than ``sender``'s would be. False: ``sender``
        holds (one of) the longest, so its own new message is the one to drop."""
        queues = self.queues
        longest = max(queues, key=lambda s: len(queues[s]), default=None)  # (first queued of equals)
        if longest is None or len(queues[longest]) <= self.waiting(sender):
            return False
        queue = self.queues[longest]
        queue.pop()
        self.total -= 1
        if not queue:
            del self.queues[longest]
            self.order.remove(longest)
        return True

    def waiting(self, sender: str) -> int:
        queue = self.queues.get(sender)
        return len(queue) if queue is not None else 0


class FairInbox(asyncio.Queue):
    """An inbox served one sender at a time (see the module docstring). ``admit(item)``:
    False refuses a message before it is queued (admission counts it); ``drop(reason)``
    counts a message refused here."""

    admit: Callable[[object], bool] = staticmethod(lambda _item: True)
    drop: Callable[[str], None] = staticmethod(lambda _reason: None)
    per_sender: int = PER_SENDER

    def _init(self, maxsize) -> None:
        self._queue = _Turns()

    def put_nowait(self, item) -> None:
        if not self.admit(item):
            return
        sender = sender_of(item)
        if self._queue.waiting(sender) >= self.per_sender:
            self.drop("sender-queue-full")
            return
        if self.full():
            # Full: a message is dropped and counted, from the longest queue (so f members
            # each within ``per_sender`` cannot fill the inbox against an honest one).
            self.drop("backlog-full")
            if not self._queue.push_out(sender):
                return
        super().put_nowait(item)

    def _put(self, item) -> None:
        self._queue.put(sender_of(item), item)

    def _get(self):
        return self._queue.take()
