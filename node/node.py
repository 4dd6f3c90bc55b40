"""A consensus node: authenticates what arrives, steps its replica, performs the effects.

The node is the same in the simulator and over MQTT; only the transport differs.
Its CPU is modelled as a single server: work starts when the node is free and
each signature, verification and transaction adds its cost, so messages leave at
the time the node would really have finished producing them. A message that finds
more than a few milliseconds of work ahead waits in its sender's queue, and the
queues are served in turn (node/fairqueue.py), so one sender's flood delays only it.

What a real node keeps on disk survives ``crash``: the ledger, the world state
and the durable protocol state the replica asks it to write (``Persist``
effects, kept in ``store`` before any later effect is performed). Its timers,
the messages in flight to it, and the rest of the replica's log do not.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Protocol

from consensus.block import Block
from consensus.effects import Broadcast, Effect, CancelTimer, CatchUp, Drop, Execute, Forward, Persist, Send, StartTimer
from consensus.events import Adopted, Executed, Receive, Restarted, TimerFired
from consensus.messages import BlockReply, NewView, PrePrepare, Request, Signed, ViewChange
from consensus.replica import VIEW_TIMER, Replica, Restored

from .admission import DEFAULT_LIMITS, Admission, Limits
from .codec import MalformedMessage, decode
from .costs import NO_COSTS, Costs
from .execution import Executor
from .fairqueue import TURN_TIMER, Turns
from .ledger import Ledger
from .membership import Membership
from .metrics import Metrics
from .signing import Signer
from .store import MemoryStore
from .sync import SYNC_TIMER, TICK_TIMER, Syncer
from .sync_messages import Blocks, Fetch
from .transport import Transport



class Stepped(Protocol):
    """What a node steps: an honest ``Replica``, a Byzantine one (node/byzantine.py) or an
    observer's (node/observer.py)."""

    installed_view: int

    def step(self, event) -> list[Effect]: ...

    def deliver(self, env: Signed, now: int) -> list[Effect]: ...


class _ItsTurn:
    """The ``link`` of a message served from its sender's queue: admitted already."""


ReplicaFactory = Callable[[Restored | None], Stepped]
_CARRIERS = frozenset({PrePrepare, BlockReply, ViewChange, NewView})  # messages that carry signed envelopes
_BLOCK_CARRIERS = (PrePrepare, BlockReply)  # a block attached: checked whenever one arrives
_UNBOUND = frozenset({"bad-block-hash", "bad-tx-root"})  # a block not bound to its header (Membership.check_block)
_ITS_TURN = _ItsTurn()


def _embedded_once(message):
    """What ``embedded(message)`` names, each envelope and each block once (by identity:
    the decoder and the simulator share one object per digest). ``embedded`` repeats a
    pre-prepare's requests once per VIEW-CHANGE naming it: K VIEW-CHANGEs naming one
    block of R requests would be K x R checks from one message of K small envelopes."""
    seen: set[int] = set()

    def once(x) -> bool:
        if id(x) in seen:
            return False
        seen.add(id(x))
        return True

    def pre_prepare(pp):
        if once(pp):
            yield pp
            block = pp.message.block  # None inside a VIEW-CHANGE or NEW-VIEW: named by digest
            if block is not None and once(block):
                yield block

    def view_change(vc):
        for c in vc.checkpoint_proof:
            if once(c):
                yield c
        for proof in vc.prepared:
            yield from pre_prepare(proof.pre_prepare)
            for p in proof.prepares:
                if once(p):
                    yield p

    kind = type(message)
    if kind is ViewChange:
        yield from view_change(message)
    elif kind is NewView:
        for vc in message.view_changes:
            if once(vc):
                yield vc
                yield from view_change(vc.message)
        for pre in message.pre_prepares:
            yield from pre_prepare(pre)


class Node:
    def __init__(self, node_id: str, make_replica: ReplicaFactory, signer: Signer, membership: Membership,
                 transport: Transport, executor: Executor, ledger: Ledger, metrics: Metrics,
                 cpu: Costs = NO_COSTS, syncer: Callable[["Node"], Syncer] | None = None,
                 store: MemoryStore | None = None, limits: Limits | None = DEFAULT_LIMITS):
        self.id = node_id
        self.make_replica = make_replica
        self.replica = make_replica(None)
        self.signer = signer
        self.membership = membership
        self.transport = transport
        self.executor = executor
        self.ledger = ledger
        self.metrics = metrics
        self.cpu = cpu
        self.syncer = syncer(self) if syncer else None
        self.store = store if store is not None else MemoryStore()
        self.busy_until = 0
        self.requests_busy_until = 0  # client requests are verified on their own lane
        # Signatures this node already checked, so an envelope embedded in a later
        # message (a request in a block, a prepare in a VIEW-CHANGE) costs nothing
        # again. Bounded: cleared when full, as a real node's cache would evict.
        self.verified: set[bytes] = set()
        self.down = False  # crashed: nothing arrives, nothing runs
        self.paused = False  # slow: work waits until resumed
        self.backlog: list = []
        self._installed = 0
        self._handlers = {Fetch: self._on_fetch, Blocks: self._on_blocks}
        self._verdicts = membership._verdicts  # the fast path of authenticate(): a cached verdict
        # Per-sender rate and total backlog, checked before any verification (node/admission.py).
        # None: the caller admits messages itself (a node process, by the topic they came on).
        self.admission = Admission(limits) if limits is not None else None
        # While the CPU is busy, admitted messages wait in their sender's queue, served in turn.
        self.turns = Turns(cpu.verify, limits.queue, limits.max_backlog_ms * 1_000_000 // max(cpu.verify, 1),
                           limits.shared_ms * 1_000_000) if limits is not None else None
        self._members = membership.members

    # ---- inputs -----------------------------------------------------------------

    def on_message(self, env: Signed, now: int, link: str | _ItsTurn | None = None) -> None:
        """One delivered copy of a message. ``link``: the peer the network delivered it
        from (the simulator knows it); admission charges that peer's bucket, never the
        signer the envelope merely claims, which anyone can write before its signature
        is checked (a forgery naming an honest member must not use up that member's
        bucket). Without a link (a message injected by a test), the claimed signer."""
        # The hot path of the simulator: one call per delivered copy of a message.
        if self.down or self.paused:
            if self.down:
                self.metrics.lost_to_crash += 1
            else:
                self._hold(env, now, link)
            return
        kind = type(env.message)
        if kind is Request:
            self._on_request(env, now)
            return
        if env.signer not in self._members:
            # Refused for the price of a look-up, as a process refuses a topic of no
            # member: no verification is charged, so junk naming nobody cannot grow the
            # backlog past the bound admission keeps.
            self.metrics.drop(self.id, "unknown-signer")
            return
        busy = self.busy_until
        admission = self.admission
        if admission is not None and link is not _ITS_TURN:
            sender = env.signer if link is None else link
            refused = admission.admit(sender, now, busy - now)
            if refused is None and (busy - now > self.turns.window or self.turns.held):  # wait for the sender's turn
                self._wait_turn(sender, env, busy, now)
                return
            if refused is not None:
                self.metrics.drop(self.id, refused)
                return
        t = (now if now > busy else busy) + self.cpu.verify
        reason = self._verdicts.get(env, 0)
        if reason == 0:
            reason = self.membership.authenticate(env)
        if reason is None:  # the sender's certificate at this node's time (valid, not revoked)
            reason = self.membership.certificate_refusal(env.signer, now)
        if reason is None:
            verified = self.verified
            verified.add(env.signature)
            if len(verified) > self.VERIFIED_CACHE:
                verified.clear()
            if kind is BlockReply and not self._wants_block(env):
                reason = "unrequested-block"  # before its block's requests are checked, one signature each
            elif kind in _CARRIERS and (kind in _BLOCK_CARRIERS or not self._is_replay(env)):
                t, reason = self._check_embedded(env, kind, t)
        if reason is not None:
            self.metrics.drop(self.id, reason)
            self._charge(now, t)
            return
        handler = self._handlers.get(kind)
        if handler is not None:
            self._charge(now, handler(env, t))
            return
        self._run(env, now, t)

    def _hold(self, env: Signed, now: int, link: str | _ItsTurn | None) -> None:
        """A message reaching a paused node waits until it resumes, as a stopped process's
        messages wait at the broker. Admitted as it arrives (a sender's bucket; the held
        messages counted at one verification each against ``max_backlog_ms``), then, on
        resume, worked off first come, first served: a sender's share of a replay is what
        it sent while the node was away, not a flood, and the per-sender queues would
        refuse an honest peer's few thousand messages at once (review revfq, R5)."""
        if type(env.message) is not Request and link is not _ITS_TURN:
            if env.signer not in self._members:
                self.metrics.drop(self.id, "unknown-signer")
                return
            if self.admission is not None:
                refused = self.admission.admit(env.signer if link is None else link, now,
                                               len(self.backlog) * self.cpu.verify)
                if refused is not None:
                    self.metrics.drop(self.id, refused)
                    return
            link = _ITS_TURN
        self.backlog.append((lambda e, t, _l=link: self.on_message(e, t, _l), env))

    def on_wire(self, raw: bytes, now: int) -> None:
        """Bytes from a transport: decoded (node/codec.py), or counted under the reason
        they were refused and dropped; nothing the bytes hold escapes as an exception."""
        try:
            env = decode(raw, self.membership.chain_id)
        except MalformedMessage as exc:
            self.metrics.drop(self.id, exc.reason)
            return
        self.on_message(env, now)

    def _on_request(self, env: Signed, now: int) -> None:
        """Client requests are checked on a lane of their own (a node verifies them in
        parallel with consensus work), with a bounded queue: back-pressure, not collapse."""
        start = now if now > self.requests_busy_until else self.requests_busy_until
        if self.cpu.request_queue and start - now > self.cpu.request_queue:
            self.metrics.drop(self.id, "overloaded")
            return
        t = start + self.cpu.verify
        self.requests_busy_until = t
        self.metrics.cpu_ns[self.id] += self.cpu.verify
        reason = self.membership.authenticate(env) or self.membership.certificate_refusal(env.signer, now)
        if reason is not None:
            self.metrics.drop(self.id, reason)
            return
        self._remember(env.signature)
        t = t if t > self.busy_until else self.busy_until
        self._run(env, t, t)

    def on_timer(self, name: str, now: int) -> None:
        if self.down:
            return
        if self.paused:
            self.backlog.append((self.on_timer, name))
            return
        if name == TURN_TIMER:
            self._take_turns(now)
            return
        t = now if now > self.busy_until else self.busy_until
        if name == SYNC_TIMER:
            self._charge(now, self.syncer.on_timer(t))
            return
        if name == TICK_TIMER:
            self._charge(now, self.syncer.on_tick(t))
            return
        if name == VIEW_TIMER and self._forget_lapsed_requests(now):
            return
        self._run(TimerFired(t, name), now, t)

    def _wait_turn(self, sender: str, env: Signed, busy: int, now: int) -> None:
        """Queue ``env`` until the CPU is free and ``sender``'s turn comes (node/fairqueue.py)."""
        turns = self.turns
        refused = turns.hold(sender, env)
        if refused is not None:
            self.metrics.drop(self.id, refused)
        elif not turns.armed:
            turns.armed = True
            self.transport.start_timer(self.id, TURN_TIMER, turns.wake_at(busy, now))

    def _take_turns(self, now: int) -> None:
        """The CPU has room: serve waiting messages in turn until its shared window is full."""
        turns = self.turns
        turns.armed = False
        window = turns.window
        while turns.held:
            if self.busy_until - now > window:
                turns.armed = True
                self.transport.start_timer(self.id, TURN_TIMER, turns.wake_at(self.busy_until, now))
                return
            sender, env = turns.next()
            turns.serving = env
            start = self.busy_until if self.busy_until > now else now
            self.on_message(env, now, _ITS_TURN)
            turns.serving = None
            turns.charge(sender, self.busy_until - start)

    def _forget_lapsed_requests(self, now: int) -> bool:
        """A request taken while its client's certificate held, still waiting when it no
        longer does: peers judge a forwarded request on their own clock and refuse it, so
        no primary would ever order it from here. Forget it rather than time out into a
        view change nobody joins (docs/messages.md, "Certificates at the node"). True if
        the request timer that fired had nothing else to wait on."""
        replica = self.replica
        if type(replica) is not Replica or not replica.active or not replica.pending:
            return False
        refusal = self.membership.certificate_refusal
        lapsed = [rid for rid, env in replica.pending.items() if refusal(env.signer, now) is not None]
        if not lapsed:
            return False
        for _ in lapsed:
            self.metrics.drop(self.id, "request-certificate-lapsed")
        return replica.forget_requests(lapsed)

    VERIFIED_CACHE = 8192

    def _is_replay(self, env: Signed) -> bool:
        """A VIEW-CHANGE or NEW-VIEW the replica will refuse or answer unread (a replay):
        its embedded envelopes need no checking (consensus/replica.py, ``is_replay``)."""
        is_replay = getattr(self.replica, "is_replay", None)  # (an observer has none)
        return is_replay is not None and is_replay(env)

    def _wants_block(self, env: Signed) -> bool:
        """Is the replica fetching this BLOCK-REPLY's block (consensus/replica.py, ``wants_block``)?"""
        wants = getattr(self.replica, "wants_block", None)  # (an observer has none)
        return wants is None or wants(env.message.digest)

    def _remember(self, signature: bytes) -> None:
        if len(self.verified) >= self.VERIFIED_CACHE:
            self.verified.clear()
        self.verified.add(signature)

    def _oversized(self, message, kind, signer: str) -> str | None:
        """A carrier holding more envelopes than any honest one can (checked before a single
        one is: the work of checking is per envelope, and fair queuing cannot preempt one
        message): a block of more than ``block_size`` requests, a VIEW-CHANGE proof of more
        than n checkpoints or prepares, more than L prepared sequences; a NEW-VIEW of more
        than n VIEW-CHANGEs or L pre-prepares; a PRE-PREPARE or NEW-VIEW from a replica that
        is not the primary of its view. Else a few such messages from one member,
        each checked whole, keep every node busy for seconds (and a proof beyond the
        verified cache costs its whole length again each time it is sent)."""
        config = getattr(self.replica, "config", None)
        if config is None:
            return None
        n, window, block = len(config.replicas), config.watermark_window, config.block_size

        # Pre-prepares inside a VIEW-CHANGE or NEW-VIEW name their blocks by digest (no
        # block to count); a PRE-PREPARE or BLOCK-REPLY carries one.
        def view_change(vc) -> bool:
            return (len(vc.checkpoint_proof) > n or len(vc.prepared) > window
                    or any(len(p.prepares) > n for p in vc.prepared))

        def too_big(b) -> bool:
            return b is not None and len(b.requests) > block

        primary_of = getattr(self.replica, "primary_of", None)
        if kind is PrePrepare:
            if primary_of is not None and signer != primary_of(message.view):
                return "pre-prepare-not-from-primary"  # as the replica would, but before its block is checked
            return "oversized-block" if too_big(message.block) else None
        if kind is BlockReply:
            return "oversized-block" if too_big(message.block) else None
        if kind is ViewChange:
            return "oversized-view-change" if view_change(message) else None
        if kind is not NewView:
            return None
        if primary_of is not None and signer != primary_of(message.view):
            return "new-view-not-from-primary"
        if (len(message.view_changes) > n or len(message.pre_prepares) > window
                or any(view_change(vc.message) for vc in message.view_changes)):
            return "oversized-view-change"
        return None

    def _check_embedded(self, env: Signed, kind, t: int) -> tuple[int, str | None]:
        reason = self._oversized(env.message, kind, env.signer)
        if reason is not None:
            return t, reason
        if kind in _BLOCK_CARRIERS:
            block = env.message.block
            if block is None:  # a PRE-PREPARE sent on its own carries its block
                return t, "malformed"
            reason, signatures = self.membership.check_block(block)
            # A fresh proposal is judged at its block's time, never cached (the CRL may be
            # reloaded); a block fetched by digest was re-issued by a NEW-VIEW, and a
            # re-issued block is not judged on time again (docs/messages.md, "Block time").
            if reason is None and kind is PrePrepare:
                reason = self.membership.block_time_refusal(block)
            if reason is not None:
                return t, reason if reason in _UNBOUND else f"bad-request-in-block: {reason}"
            return self._charge_requests(signatures, t), None
        verified = self.verified
        for inner in _embedded_once(env.message):
            if type(inner) is Block:  # a pre-prepare's block (bound to its header), checked once per block
                reason, signatures = self.membership.check_block(inner)
                if reason is not None:
                    return t, f"bad-embedded-message: {reason}"
                t = self._charge_requests(signatures, t)
                if len(verified) > self.VERIFIED_CACHE:
                    verified.clear()
                continue
            reason = self.membership.authenticate(inner)
            if reason is not None:
                return t, f"bad-embedded-message: {reason}"
            if inner.signature not in verified:
                t += self.cpu.verify
                self._remember(inner.signature)
        return t, None

    def _charge_requests(self, signatures: frozenset[bytes], t: int) -> int:
        """A block's request signatures: the modelled cost of those this node has not checked before."""
        unseen = signatures - self.verified
        self.verified |= unseen
        return t + self.cpu.verify * len(unseen)

    # ---- effects ------------------------------------------------------------------

    def _run(self, event, started: int, t: int) -> None:
        """Step the replica with ``event`` (or deliver an envelope) and perform its effects."""
        replica = self.replica
        effects = replica.deliver(event, t) if type(event) is Signed else replica.step(event)
        if not effects:  # most deliveries: a vote recorded, nothing to do (charge inline)
            if replica.installed_view != self._installed:
                self._installed = replica.installed_view
                self.metrics.views_installed.add(self._installed)
            busy = self.busy_until
            begin = started if started > busy else busy
            if t > begin:
                self.metrics.cpu_ns[self.id] += t - begin
            if t > busy:
                self.busy_until = t
            return
        queue = deque()
        self._perform(effects, queue, t, started)

    def _perform(self, first, queue, t: int, started: int) -> None:
        effects = first
        while True:
            for effect in effects:
                kind = type(effect)
                if kind is Broadcast:
                    env, t = self._sign(effect.message, t)
                    self.transport.broadcast(self.id, env, t)
                    queue.append(Receive(t, env))  # a replica counts its own vote
                elif kind is Send:
                    t = self.send_signed(effect.to, effect.message, t)
                elif kind is Forward:
                    self.transport.send(self.id, effect.to, effect.envelope, t)
                elif kind is Execute:
                    if self._extends(effect.block):
                        t = self._execute(effect.block, effect.certificate, t)
                        queue.append(Executed(t, effect.block.height, effect.block.hash, self.executor.state.root()))
                elif kind is StartTimer:
                    self.transport.start_timer(self.id, effect.name, t + effect.delay)
                elif kind is CancelTimer:
                    self.transport.cancel_timer(self.id, effect.name)
                elif kind is CatchUp:
                    if self.syncer is not None:
                        t = self.syncer.want(effect.target, effect.peers, t)
                elif kind is Persist:
                    self.store.write(effect.record)
                elif kind is Drop:
                    self.metrics.drop(self.id, effect.reason)
                else:
                    raise TypeError(f"unknown effect {effect!r}")
            if not queue:
                break
            effects = self.replica.step(queue.popleft())
        view = self.replica.installed_view
        if view != self._installed:
            self._installed = view
            self.metrics.views_installed.add(view)
        self._charge(started, t)

    def _sign(self, message, t: int) -> tuple[Signed, int]:
        if type(message) is NewView and not message.signed:
            t += self.cpu.sign * len(message.pre_prepares)  # the signer signs each re-issued pre-prepare
        return self.signer.sign(message), t + self.cpu.sign

    def send_signed(self, to: str, message, t: int) -> int:
        env, t = self._sign(message, t)
        self.transport.send(self.id, to, env, t)
        return t

    def _extends(self, block: Block) -> bool:
        """A committed block must extend this node's chain. Only more than f faulty
        replicas can certify one that does not; then the node stops executing rather
        than rewrite its ledger (the auditor reports the fork)."""
        ledger = self.ledger
        if block.height == ledger.height + 1 and block.header.prev_hash == ledger.head_hash:
            return True
        self.metrics.drop(self.id, "certified-block-does-not-extend-chain")
        return False

    def _execute(self, block: Block, certificate: tuple[Signed, ...], t: int) -> int:
        outcome = self.executor.execute(block)
        t += self.cpu.execute_tx * len(block.requests)
        self.ledger.append(block, certificate, outcome.receipts, outcome)  # a SqliteLedger stores its writes
        self.metrics.executed(block, t)
        return t

    def adopt(self, block: Block, certificate: tuple[Signed, ...], t: int) -> int:
        """Apply a checked block fetched from a peer and tell the replica."""
        t = self._execute(block, certificate, t)
        self._run(Adopted(t, block, certificate, self.executor.state.root()), t, t)
        return self.busy_until

    def _on_fetch(self, env: Signed, t: int) -> int:
        return self.syncer.on_fetch(env, t) if self.syncer else t

    def _on_blocks(self, env: Signed, t: int) -> int:
        return self.syncer.on_blocks(env, t) if self.syncer else t

    def _charge(self, started: int, t: int) -> None:
        begin = started if started > self.busy_until else self.busy_until
        if t > begin:
            self.metrics.cpu_ns[self.id] += t - begin
        if t > self.busy_until:
            self.busy_until = t

    # ---- faults ---------------------------------------------------------------------

    def crash(self, now: int) -> None:
        """The process dies: its timers and its replica's memory with it. The replica
        object is never stepped again; ``recover`` builds a new one from the store."""
        self.down = True
        self.backlog.clear()
        if self.turns is not None:
            self.turns.clear()
        self.transport.cancel_all_timers(self.id)

    def recover(self, now: int) -> None:
        """Restart from storage: the ledger, the world state and the durable protocol
        state survived; the replica is rebuilt from them and re-arms its timers."""
        saved = Restored(durable=self.store.read(), blocks=tuple(e.block for e in self.ledger.entries),
                         last_certificate=self.ledger.entries[-1].certificate if self.ledger.entries else (),
                         state_root=self.executor.state.root())
        self.replica = self.make_replica(saved)
        self.down = False
        self.busy_until = max(self.busy_until, now)
        self._run(Restarted(self.busy_until), self.busy_until, self.busy_until)
        if self.syncer is not None:
            # Ask peers for whatever was committed while this node was down.
            others = tuple(p for p in self.replica.config.replicas if p != self.id)
            self.syncer.attempt = 0
            self.syncer.asked = None
            self.syncer.target = 0
            self._charge(self.busy_until, self.syncer.want(-1, others, self.busy_until))
            self.syncer.start(self.busy_until)

    def pause(self, now: int) -> None:
        self.paused = True

    def resume(self, now: int) -> None:
        self.paused = False
        backlog, self.backlog = self.backlog, []
        for handler, arg in backlog:
            handler(arg, now)
