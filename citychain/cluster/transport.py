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
clock in nanoseconds.
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
        self._last: tuple[bytes, bytes] | None = None  # (signature, encoding) of the last envelope

    def attach(self, on_timer: Callable[[str, int], None]) -> None:
        self.on_timer = on_timer

    # ---- the Transport interface (node/transport.py) ----------------------------------

    def broadcast(self, src: str, env: Signed, at: int) -> None:
        self._post(topics.bcast(self.chain_id, src), env)

    def send(self, src: str, dst: str, env: Signed, at: int) -> None:
        self._post(topics.direct(self.chain_id, dst, src), env)

    def start_timer(self, node: str, name: str, at: int) -> None:
        old = self.timers.pop(name, None)
        if old is not None:
            old.cancel()
        self.timers[name] = self.loop.call_at(at / 1e9, self._fire, name)

    def cancel_timer(self, node: str, name: str) -> None:
        handle = self.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def cancel_all_timers(self, node: str) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()

    # ---- plumbing ------------------------------------------------------------------

    def _fire(self, name: str) -> None:
        self.timers.pop(name, None)
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
