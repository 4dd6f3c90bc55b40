"""A consensus node: authenticates what arrives, steps its replica, performs the effects.

The node is the same in the simulator and over MQTT; only the transport differs.
Its CPU is modelled as a single server: work starts when the node is free and
each signature, verification and transaction adds its cost, so messages leave at
the time the node would really have finished producing them.
"""

from __future__ import annotations

from collections import deque

from consensus.effects import Broadcast, CancelTimer, Drop, Execute, Forward, StartTimer
from consensus.events import Executed, Receive, TimerFired
from consensus.messages import PrePrepare, Request, Signed
from consensus.replica import Replica

from .cpu import CpuCosts
from .execution import Executor
from .ledger import Ledger
from .membership import Membership
from .metrics import Metrics
from .signing import Signer
from .transport import Transport


class Node:
    def __init__(self, node_id: str, replica: Replica, signer: Signer, membership: Membership,
                 transport: Transport, executor: Executor, ledger: Ledger, metrics: Metrics,
                 cpu: CpuCosts = CpuCosts()):
        self.id = node_id
        self.replica = replica
        self.signer = signer
        self.membership = membership
        self.transport = transport
        self.executor = executor
        self.ledger = ledger
        self.metrics = metrics
        self.cpu = cpu
        self.busy_until = 0
        self.known_requests: set[str] = set()  # request signatures this node already checked

    # ---- inputs -----------------------------------------------------------------

    def on_message(self, env: Signed, now: int) -> None:
        t = (now if now > self.busy_until else self.busy_until) + self.cpu.verify
        reason = self.membership.authenticate(env)
        kind = type(env.message)
        if reason is None and kind is PrePrepare:
            t, reason = self._check_block_requests(env, t)
        elif reason is None and kind is Request:
            self.known_requests.add(env.digest)
        if reason is not None:
            self.metrics.drop(self.id, reason)
            self._charge(now, t)
            return
        self._run(Receive(t, env), now, t)

    def on_timer(self, name: str, now: int) -> None:
        t = now if now > self.busy_until else self.busy_until
        self._run(TimerFired(t, name), now, t)

    def _check_block_requests(self, env: Signed, t: int) -> tuple[int, str | None]:
        known = self.known_requests
        for r in env.message.block.requests:
            if r.digest in known:
                continue
            t += self.cpu.verify
            reason = self.membership.authenticate(r)
            if reason is not None:
                return t, f"bad-request-in-block: {reason}"
            known.add(r.digest)
        return t, None

    # ---- effects ------------------------------------------------------------------

    def _run(self, event, started: int, t: int) -> None:
        queue = deque((event,))
        while queue:
            for effect in self.replica.step(queue.popleft()):
                kind = type(effect)
                if kind is Broadcast:
                    t += self.cpu.sign
                    env = self.signer.sign(effect.message)
                    self.transport.broadcast(self.id, env, t)
                    queue.append(Receive(t, env))  # a replica counts its own vote
                elif kind is Forward:
                    self.transport.send(self.id, effect.to, effect.envelope, t)
                elif kind is Execute:
                    t = self._execute(effect, t)
                    queue.append(Executed(t, effect.block.height, effect.block.hash, self.executor.state.root()))
                elif kind is StartTimer:
                    self.transport.start_timer(self.id, effect.name, t + effect.delay)
                elif kind is CancelTimer:
                    self.transport.cancel_timer(self.id, effect.name)
                elif kind is Drop:
                    self.metrics.drop(self.id, effect.reason)
                else:
                    raise TypeError(f"unknown effect {effect!r}")
        self._charge(started, t)

    def _execute(self, effect: Execute, t: int) -> int:
        block = effect.block
        outcome = self.executor.execute(block)
        t += self.cpu.execute_tx * len(block.requests)
        self.ledger.append(block, effect.certificate, outcome.receipts)
        self.metrics.executed(block.height, t, len(block.requests))
        return t

    def _charge(self, started: int, t: int) -> None:
        begin = started if started > self.busy_until else self.busy_until
        self.metrics.cpu_ns[self.id] += t - begin
        self.busy_until = t
