"""A PBFT replica as a pure state machine (Castro & Liskov, OSDI'99, section 4).

``Replica.step(event) -> list[Effect]``. The caller authenticates messages
before they arrive here, signs and sends what ``Broadcast`` asks, runs timers and
executes committed blocks, answering each with an ``Executed`` event.

Blocks are proposed one at a time (a new PRE-PREPARE only after the previous block
executed): its header then names the previous block's hash and state root, so
the hash that COMMITs sign covers the whole chain and every backup can check a
proposal against its own state before it prepares it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

from .block import Block, BlockHeader, tx_root
from .effects import Broadcast, CancelTimer, Drop, Effect, Execute, Forward, StartTimer
from .events import Event, Executed, Receive, TimerFired
from .messages import Checkpoint, Commit, PrePrepare, Prepare, Request, Signed
from .quorum import max_faulty, quorum

NOTHING: list = []
BATCH_TIMER = "batch"


class LocalProtocolError(RuntimeError):
    """The caller broke the replica's contract (e.g. executed blocks out of order)."""


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    chain_id: str
    replicas: tuple[str, ...]  # consensus members in genesis order; primary(v) = replicas[v mod n]
    me: str
    genesis_hash: str
    genesis_state_root: str
    block_size: int = 100
    batch_timeout: int = 20_000_000  # ns the primary waits to fill a block
    checkpoint_interval: int = 10  # K
    watermark_window: int = 20  # L = H - h

    def __post_init__(self):
        if self.me not in self.replicas:
            raise ValueError(f"{self.me} is not a consensus member")
        if len(set(self.replicas)) != len(self.replicas):
            raise ValueError("replica ids must be distinct")
        if self.block_size < 1 or self.checkpoint_interval < 1:
            raise ValueError("block_size and checkpoint_interval must be >= 1")
        if self.watermark_window < self.checkpoint_interval:
            raise ValueError("watermark_window must be >= checkpoint_interval, or the log can never advance")


class Slot:
    """What the log holds for one sequence number."""

    __slots__ = ("seq", "view", "digest", "block", "pre_prepare", "prepares", "commits",
                 "prepared", "committed", "certificate")

    def __init__(self, seq: int):
        self.seq = seq
        self.view = -1
        self.digest: str | None = None
        self.block: Block | None = None
        self.pre_prepare: Signed | None = None
        # Votes may arrive before the pre-prepare, and (under attack) for several
        # digests: key them by (view, digest), then by signer.
        self.prepares: dict[tuple[int, str], dict[str, Signed]] = {}
        self.commits: dict[tuple[int, str], dict[str, Signed]] = {}
        self.prepared = False
        self.committed = False
        self.certificate: tuple[Signed, ...] = ()


class Replica:
    def __init__(self, config: ReplicaConfig):
        self.config = config
        self.n = len(config.replicas)
        self.f = max_faulty(self.n)
        self.q = quorum(self.n)
        self.me = config.me
        self.view = 0
        self.low = 0  # h: sequence of the last stable checkpoint
        self.window = config.watermark_window
        self.executed = 0  # last sequence the caller executed
        self.delivered = 0  # last sequence handed out in an Execute effect
        self.last_proposed = 0
        self.head_hash = config.genesis_hash
        self.head_timestamp = -1
        self.state_root = config.genesis_state_root
        self.log: dict[int, Slot] = {}
        self.deferred: dict[int, Signed] = {}  # pre-prepares waiting for the block below to execute
        self.pending: dict[str, Signed] = {}  # request id -> request, in arrival order
        self.accepted: set[str] = set()  # request ids in accepted, not yet executed blocks
        self.done: set[str] = set()  # request ids executed
        self.checkpoints: dict[int, dict[tuple[str, str], dict[str, Signed]]] = {}
        self.stable_proof: tuple[Signed, ...] = ()
        self.batch_timer = False
        self.batch_due = False
        self._handlers = {
            Request: self._on_request,
            PrePrepare: self._on_pre_prepare,
            Prepare: self._on_prepare,
            Commit: self._on_commit,
            Checkpoint: self._on_checkpoint,
        }

    # ---- queries -------------------------------------------------------------

    @property
    def primary(self) -> str:
        return self.config.replicas[self.view % self.n]

    @property
    def high(self) -> int:
        """H: the highest sequence this replica accepts messages for."""
        return self.low + self.window

    # ---- the one entry point ---------------------------------------------------

    def step(self, event: Event) -> list[Effect]:
        kind = type(event)
        if kind is Receive:
            env = event.envelope
            handler = self._handlers.get(type(env.message))
            if handler is None:
                return [Drop("unexpected-message", env)]
            return handler(env, event.now)
        if kind is TimerFired:
            return self._on_timer(event)
        if kind is Executed:
            return self._on_executed(event)
        raise LocalProtocolError(f"unknown event {event!r}")

    # ---- requests and proposals (section 4.1, 4.2) ---------------------------------

    def _on_request(self, env: Signed, now: int) -> list[Effect]:
        rid = env.digest
        if rid in self.done or rid in self.pending or rid in self.accepted:
            return [Drop("duplicate-request", env)]
        self.pending[rid] = env
        if self.me == self.primary:
            return self._maybe_propose(now)
        # A backup relays to the primary (section 4.1) and keeps the request, so
        # it can tell when the primary fails to order it.
        return [Forward(self.primary, env)]

    def _maybe_propose(self, now: int) -> list[Effect]:
        if self.me != self.primary or self.last_proposed > self.executed or not self.pending:
            return NOTHING
        seq = self.executed + 1
        if seq > self.high:
            return NOTHING  # wait for a checkpoint to become stable
        if len(self.pending) < self.config.block_size and not self.batch_due:
            if self.batch_timer:
                return NOTHING
            self.batch_timer = True
            return [StartTimer(BATCH_TIMER, self.config.batch_timeout)]
        effects: list[Effect] = []
        if self.batch_timer:
            self.batch_timer = False
            effects.append(CancelTimer(BATCH_TIMER))
        self.batch_due = False
        requests = tuple(islice(self.pending.values(), self.config.block_size))
        for r in requests:
            del self.pending[r.digest]
        header = BlockHeader(
            chain_id=self.config.chain_id, height=seq, prev_hash=self.head_hash,
            tx_root=tx_root(requests), state_root=self.state_root, view=self.view,
            proposer=self.me, timestamp=max(now, self.head_timestamp + 1))
        block = Block(header, requests, header.compute_hash())
        self.last_proposed = seq
        effects.append(Broadcast(PrePrepare(self.view, seq, block.hash, block)))
        return effects

    def _on_timer(self, event: TimerFired) -> list[Effect]:
        if event.name == BATCH_TIMER:
            self.batch_timer = False
            self.batch_due = True
            return self._maybe_propose(event.now)
        raise LocalProtocolError(f"unknown timer {event.name!r}")

    # ---- three-phase agreement (section 4.2) ----------------------------------

    def _in_window(self, env: Signed, seq: int) -> Drop | None:
        if seq <= self.low:
            return Drop("stale", env)
        if seq > self.high:
            return Drop("beyond-high-watermark", env)
        return None

    def _slot(self, seq: int) -> Slot:
        slot = self.log.get(seq)
        if slot is None:
            slot = self.log[seq] = Slot(seq)
        return slot

    def _on_pre_prepare(self, env: Signed, now: int) -> list[Effect]:
        m: PrePrepare = env.message
        if m.view != self.view:
            return [Drop("wrong-view", env)]
        if env.signer != self.primary:
            return [Drop("pre-prepare-not-from-primary", env)]
        refused = self._in_window(env, m.seq)
        if refused:
            return [refused]
        slot = self._slot(m.seq)
        if slot.pre_prepare is not None and slot.view == m.view:
            return [Drop("duplicate" if slot.digest == m.digest else "conflicting-pre-prepare", env)]
        waiting = self.deferred.get(m.seq)
        if waiting is not None and waiting is not env:
            return [Drop("duplicate" if waiting.message.digest == m.digest else "conflicting-pre-prepare", env)]
        if m.seq > self.executed + 1:
            # The header names the previous block's hash and state root: check it
            # once that block has executed here.
            self.deferred[m.seq] = env
            return NOTHING
        self.deferred.pop(m.seq, None)
        reason = self._invalid_proposal(m, env.signer)
        if reason:
            return [Drop(reason, env)]
        slot.view, slot.digest, slot.block, slot.pre_prepare = m.view, m.digest, m.block, env
        for r in m.block.requests:
            self.pending.pop(r.digest, None)
            self.accepted.add(r.digest)
        effects: list[Effect] = []
        if self.me != self.primary:
            effects.append(Broadcast(Prepare(m.view, m.seq, m.digest)))
        effects.extend(self._advance(slot))
        return effects

    def _invalid_proposal(self, m: PrePrepare, signer: str) -> str | None:
        h = m.block.header
        if h.chain_id != self.config.chain_id:
            return "wrong-chain"
        if h.height != m.seq:
            return "height-mismatch"
        if h.view != m.view or h.proposer != signer:
            return "wrong-proposer"
        if h.prev_hash != self.head_hash:
            return "wrong-prev-hash"
        if h.state_root != self.state_root:
            return "wrong-state-root"
        if h.timestamp <= self.head_timestamp:
            return "timestamp-not-increasing"
        requests = m.block.requests
        if len(requests) > self.config.block_size:
            return "oversized-block"
        seen: set[str] = set()
        for r in requests:
            if r.digest in self.done:
                return "replayed-request"
            if r.digest in seen:
                return "duplicate-request-in-block"
            seen.add(r.digest)
        return None

    def _on_prepare(self, env: Signed, now: int) -> list[Effect]:
        m: Prepare = env.message
        if m.view != self.view:
            return [Drop("wrong-view", env)]
        refused = self._in_window(env, m.seq)
        if refused:
            return [refused]
        if env.signer == self.primary:
            return [Drop("prepare-from-primary", env)]
        slot = self._slot(m.seq)
        key = (m.view, m.digest)
        votes = slot.prepares.get(key)
        if votes is None:
            votes = slot.prepares[key] = {}
        elif env.signer in votes:
            return [Drop("duplicate", env)]
        votes[env.signer] = env
        if slot.prepared or slot.digest != m.digest or len(votes) < self.q - 1:
            return NOTHING
        return self._advance(slot)

    def _on_commit(self, env: Signed, now: int) -> list[Effect]:
        m: Commit = env.message
        if m.view != self.view:
            return [Drop("wrong-view", env)]
        refused = self._in_window(env, m.seq)
        if refused:
            return [refused]
        slot = self._slot(m.seq)
        key = (m.view, m.digest)
        votes = slot.commits.get(key)
        if votes is None:
            votes = slot.commits[key] = {}
        elif env.signer in votes:
            return [Drop("duplicate", env)]
        votes[env.signer] = env
        if slot.committed or not slot.prepared or slot.digest != m.digest or len(votes) < self.q:
            return NOTHING
        return self._advance(slot)

    def _advance(self, slot: Slot) -> list[Effect]:
        """Move a slot through prepared -> committed-local as far as its votes allow."""
        effects: list[Effect] = []
        key = (slot.view, slot.digest)
        if not slot.prepared and slot.pre_prepare is not None:
            # prepared(m, v, n, i): the pre-prepare plus 2f prepares from distinct
            # backups (q - 1 in general; see quorum.py).
            if len(slot.prepares.get(key, ())) >= self.q - 1:
                slot.prepared = True
                effects.append(Broadcast(Commit(slot.view, slot.seq, slot.digest)))
        if slot.prepared and not slot.committed:
            votes = slot.commits.get(key, {})
            # committed-local(m, v, n, i): prepared plus 2f + 1 matching commits.
            if len(votes) >= self.q:
                slot.committed = True
                slot.certificate = tuple(sorted(votes.values(), key=lambda e: e.signer))
                effects.extend(self._deliver_in_order())
        return effects

    def _deliver_in_order(self) -> list[Effect]:
        effects: list[Effect] = []
        while True:
            slot = self.log.get(self.delivered + 1)
            if slot is None or not slot.committed:
                return effects
            self.delivered += 1
            effects.append(Execute(slot.block, slot.certificate))

    # ---- execution and checkpoints (section 4.3) ----------------------------------

    def _on_executed(self, event: Executed) -> list[Effect]:
        seq = event.seq
        if seq != self.executed + 1 or seq > self.delivered:
            raise LocalProtocolError(f"executed {seq} out of order (last executed {self.executed})")
        slot = self.log[seq]
        if event.block_hash != slot.digest:
            raise LocalProtocolError(f"executed block {seq} is not the committed one")
        self.executed = seq
        self.head_hash = event.block_hash
        self.head_timestamp = slot.block.header.timestamp
        self.state_root = event.state_root
        for r in slot.block.requests:
            self.accepted.discard(r.digest)
            self.done.add(r.digest)
        effects: list[Effect] = []
        if seq % self.config.checkpoint_interval == 0:
            effects.append(Broadcast(Checkpoint(seq, event.block_hash, event.state_root)))
        waiting = self.deferred.get(seq + 1)
        if waiting is not None:
            effects.extend(self._on_pre_prepare(waiting, event.now))
        effects.extend(self._maybe_propose(event.now))
        return effects

    def _on_checkpoint(self, env: Signed, now: int) -> list[Effect]:
        m: Checkpoint = env.message
        if m.seq % self.config.checkpoint_interval:
            return [Drop("checkpoint-off-interval", env)]
        if m.seq <= self.low:
            return [Drop("stale", env)]
        by_digest = self.checkpoints.get(m.seq)
        if by_digest is None:
            by_digest = self.checkpoints[m.seq] = {}
        votes = by_digest.setdefault((m.block_hash, m.state_root), {})
        if env.signer in votes:
            return [Drop("duplicate", env)]
        votes[env.signer] = env
        # Our own checkpoint must be among the matching ones: only then do we hold
        # the state the certificate vouches for (a lagging replica needs state transfer).
        if len(votes) >= self.q and self.me in votes:
            return self._stabilise(m.seq, votes, now)
        return NOTHING

    def _stabilise(self, seq: int, votes: dict[str, Signed], now: int) -> list[Effect]:
        """A quorum of matching checkpoints: the checkpoint is stable; truncate the log."""
        self.low = seq
        self.stable_proof = tuple(sorted(votes.values(), key=lambda e: e.signer))
        for s in [s for s in self.log if s <= seq]:
            del self.log[s]
        for s in [s for s in self.checkpoints if s <= seq]:
            del self.checkpoints[s]
        for s in [s for s in self.deferred if s <= seq]:
            del self.deferred[s]
        return self._maybe_propose(now)
