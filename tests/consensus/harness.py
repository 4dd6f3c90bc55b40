"""An in-memory network of pure replicas, in the style of etcd-io/raft's test network.

Messages are signed with real Ed25519 keys by node.signing.Signer so envelopes
look exactly like production ones; the harness itself decides what is delivered,
dropped or reordered, and executes committed blocks with a toy state root.
"""

from __future__ import annotations

import hashlib
from collections import deque

from consensus.durable import DurableState
from consensus.effects import Broadcast, CancelTimer, CatchUp, Drop, Execute, Forward, Persist, Send, StartTimer
from consensus.events import Adopted, Executed, Receive, Restarted, TimerFired
from consensus.messages import Request
from consensus.replica import Replica, ReplicaConfig, Restored
from node.identity import derive_key
from node.signing import Signer

GENESIS = "00" * 32
ROOT0 = "11" * 32
CHAIN = "test"


def ids(n: int) -> tuple[str, ...]:
    return tuple(f"r{i}" for i in range(n))


class Net:
    def __init__(self, n: int = 4, **config):
        self.names = ids(n)
        self.replicas = {
            name: Replica(ReplicaConfig(chain_id=CHAIN, replicas=self.names, me=name, genesis_hash=GENESIS,
                                        genesis_state_root=ROOT0, **config))
            for name in self.names
        }
        self.signers = {name: Signer(name, derive_key(0, CHAIN, name), CHAIN) for name in self.names}
        self.client = Signer("client", derive_key(0, CHAIN, "client"), CHAIN)
        self.queue: deque = deque()  # (dst, envelope)
        self.timers: dict[str, dict[str, int]] = {name: {} for name in self.names}  # name -> delay
        self.executed: dict[str, list] = {name: [] for name in self.names}
        self.drops: dict[str, list[str]] = {name: [] for name in self.names}
        self.sent: list = []  # (src, envelope) of every broadcast
        self.cut: set[str] = set()  # replicas whose traffic is dropped both ways
        self.drop_if = None  # optional (dst, envelope) -> True to lose that copy
        self.catch_ups: dict[str, list] = {name: [] for name in self.names}
        self.stores: dict[str, DurableState] = {name: DurableState() for name in self.names}
        self.effects: dict[str, list] = {name: [] for name in self.names}  # every effect, in order
        self.now = 0
        self._nonce = 0

    def request(self, op: str = "put", args: dict | None = None):
        self._nonce += 1
        return self.client.sign(Request(self._nonce, "records", op, args or {"key": f"k{self._nonce}"}, self._nonce))

    def submit(self, to: str, count: int = 1) -> list:
        envs = [self.request() for _ in range(count)]
        for env in envs:
            self.step(to, Receive(self.now, env))
        return envs

    def step(self, name: str, event) -> None:
        work = deque([(name, event)])
        while work:
            who, ev = work.popleft()
            replica = self.replicas[who]
            for effect in replica.step(ev):
                self.effects[who].append(effect)
                kind = type(effect)
                if kind is Broadcast:
                    env = self.signers[who].sign(effect.message)
                    self.sent.append((who, env))
                    for other in self.names:
                        if other != who:
                            self.queue.append((other, env))
                    work.append((who, Receive(self.now, env)))
                elif kind is Send:
                    self.queue.append((effect.to, self.signers[who].sign(effect.message)))
                elif kind is Forward:
                    self.queue.append((effect.to, effect.envelope))
                elif kind is CatchUp:
                    self.catch_ups[who].append(effect)
                elif kind is Execute:
                    block = effect.block
                    self.executed[who].append(effect)
                    root = hashlib.sha256((replica.state_root + block.hash).encode()).hexdigest()
                    work.append((who, Executed(self.now, block.height, block.hash, root)))
                elif kind is StartTimer:
                    self.timers[who][effect.name] = effect.delay
                elif kind is CancelTimer:
                    self.timers[who].pop(effect.name, None)
                elif kind is Persist:
                    self.stores[who].apply(effect.record)
                elif kind is Drop:
                    self.drops[who].append(effect.reason)

    def restart(self, name: str) -> None:
        """Crash and restart ``name``: it keeps its store and executed blocks, loses its
        timers and what was in flight to it."""
        old = self.replicas[name]
        executed = self.executed[name]
        saved = Restored(self.stores[name], tuple(e.block for e in executed),
                         executed[-1].certificate if executed else (), old.state_root)
        self.replicas[name] = Replica.restore(old.config, saved)
        self.timers[name] = {}
        self.queue = deque(item for item in self.queue if item[0] != name)
        self.step(name, Restarted(self.now))

    def adopt(self, name: str, source: str, upto: int) -> None:
        """State transfer: ``name`` applies ``source``'s executed blocks up to ``upto``, each
        with the state root it leaves (the toy root ``step`` computes: a block proposed on
        top of them names it)."""
        replica = self.replicas[name]
        for e in self.executed[source][:upto]:
            if e.block.height <= replica.executed:
                continue
            root = hashlib.sha256((replica.state_root + e.block.hash).encode()).hexdigest()
            self.step(name, Adopted(self.now, e.block, e.certificate, root))
            self.executed[name].append(e)

    def fire(self, name: str, timer: str) -> None:
        assert timer in self.timers[name], f"{timer} is not running at {name}"
        del self.timers[name][timer]
        self.step(name, TimerFired(self.now, timer))

    def deliver_all(self, limit: int = 1_000_000) -> int:
        count = 0
        while self.queue and count < limit:
            dst, env = self.queue.popleft()
            count += 1
            if dst in self.cut or env.signer in self.cut:
                continue
            if self.drop_if is not None and self.drop_if(dst, env):
                continue
            self.step(dst, Receive(self.now, env))
        return count

    def sign(self, name: str, message):
        return self.signers[name].sign(message)

    def fire_all(self, timer: str) -> None:
        for name in self.names:
            if name not in self.cut and timer in self.timers[name]:
                self.fire(name, timer)

    def heights(self) -> dict[str, int]:
        return {name: len(blocks) for name, blocks in self.executed.items()}

    def chain(self, name: str) -> list[str]:
        return [e.block.hash for e in self.executed[name]]
