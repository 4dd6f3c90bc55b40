"""The node's transport over an MQTT broker: the same interface the simulator's network implements.

A node hands its transport signed envelopes and timers; it never learns which world
it runs in. Here a broadcast is one publish on the sender's broadcast topic, which
the broker fans out to every subscriber, and a point-to-point message one publish on
the receiver's topic. Envelopes are encoded exactly as docs/messages.md says and
stay signed end to end: the broker routes bytes, every receiver checks signatures.

Publishing is asynchronous (``outbox``, drained by the connection in
``citychain.cluster.process``) while the node's effects are performed
synchronously: the node writes its durable record (``Persist``) before it hands the
dependent message to ``send`` or ``broadcast``, so a message can never be on the
wire before what it depends on is on disk. The outbox is bounded: while the broker
is unreachable messages queue up to ``MAX_OUTBOX``, then new ones are dropped and
counted (``outbox-full``); PBFT's retransmissions and state transfer recover.

Timers are wall-clock timers on the asyncio loop; node time is the loop's monotonic
clock in nanoseconds. A timeout means "nothing came in time", so a timer that falls
due while messages that had already arrived wait in the process's inbox (the
process was busy, or descheduled on a loaded machine) fires only once those have
been handled. Only those: a peer flooding the inbox after the deadline cannot
postpone it further. Without this, a loaded node times out a primary whose
messages it holds, and the view changes that follow add load: congestion collapse.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable

from consensus.messages import Signed
from node.codec import encode
from node.metrics import Metrics

from . import topics

MAX_OUTBOX = 50_000


def now_ns(loop: asyncio.AbstractEventLoop) -> int:
    return int(loop.time() * 1e9)


class MqttTransport:
    def __init__(self, chain_id: str, me: str, loop: asyncio.AbstractEventLoop, metrics: Metrics):
        self.chain_id = chain_id
        self.me = me
        self.loop = loop
        self.metrics = metrics
        self.outbox: deque[tuple[str, bytes]] = deque()
        self.ready = asyncio.Event()  # set while the outbox holds something
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.on_timer: Callable[[str, int], None] | None = None
        self.backlog: Callable[[], int] = lambda: 0
        self.handled = 0  # messages taken from the inbox so far
        self.deferred: dict[str, int] = {}  # due timer -> ``handled`` count it waits for
        self._last: tuple[bytes, bytes] | None = None  # (signature, encoding) of the last envelope

    def attach(self, on_timer: Callable[[str, int], None], backlog: Callable[[], int] | None = None) -> None:
        self.on_timer = on_timer
        if backlog is not None:
            self.backlog = backlog

    def handled_one(self) -> None:
        """One inbox message handled: fire the due timers that were waiting for it."""
        self.handled += 1
        if self.deferred:
            due = [name for name, mark in self.deferred.items() if mark <= self.handled]
            for name in due:
                del self.deferred[name]
                self._run(name)

    # ---- the Transport interface (node/transport.py) ----------------------------------

    def broadcast(self, src: str, env: Signed, at: int) -> None:
        self._post(topics.bcast(self.chain_id, src), env)

    def send(self, src: str, dst: str, env: Signed, at: int) -> None:
        self._post(topics.direct(self.chain_id, dst, src), env)

    def inbox_lost(self) -> None:
        """The connection dropped, and with it the inbox the deferred timers waited on:
        nothing they waited for will be handled, so they fire now."""
        due, self.deferred = list(self.deferred), {}
        for name in due:
            self._run(name)

    def start_timer(self, node: str, name: str, at: int) -> None:
        self.deferred.pop(name, None)
        old = self.timers.pop(name, None)
        if old is not None:
            old.cancel()
        self.timers[name] = self.loop.call_at(at / 1e9, self._fire, name)

    def cancel_timer(self, node: str, name: str) -> None:
        self.deferred.pop(name, None)
        handle = self.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def cancel_all_timers(self, node: str) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        self.deferred.clear()

    # ---- plumbing ------------------------------------------------------------------

    def _fire(self, name: str) -> None:
        self.timers.pop(name, None)
        waiting = self.backlog()
        if waiting:
            self.deferred[name] = self.handled + waiting
            return
        self._run(name)

    def _run(self, name: str) -> None:
        if self.on_timer is not None:
            self.on_timer(name, now_ns(self.loop))

    def _post(self, topic: str, env: Signed) -> None:
        last = self._last
        if last is not None and last[0] == env.signature:
            payload = last[1]  # the same envelope to several peers: encode once
        else:
            payload = encode(env)
            self._last = (env.signature, payload)
        self.post_raw(topic, payload, type(env.message).KIND)

    def post_raw(self, topic: str, payload: bytes, kind: str) -> None:
        if len(self.outbox) >= MAX_OUTBOX:
            self.metrics.drop(self.me, "outbox-full")
            return
        self.outbox.append((topic, payload))
        self.metrics.sent(kind, len(payload))
        self.ready.set()
