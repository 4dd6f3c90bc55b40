"""Byzantine behaviours as wrappers around an honest replica (as in relab/hotstuff's twins).

Each wrapper runs the honest ``Replica`` and rewrites the effects it returns (or
the events it is given); the replica itself has no ``if byzantine`` anywhere.
A wrapper reads the inner replica's state freely (it is the same process) and
may craft envelopes with its own key, or corrupt them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from consensus.block import Block
from consensus.effects import Broadcast, Effect, Forward, Send, StartTimer
from consensus.events import Receive, TimerFired
from consensus.messages import Checkpoint, Commit, NewView, PrePrepare, Prepare, Signed, ViewChange
from consensus.replica import Replica

from .signing import Signer
from .sync import Syncer
from .sync_messages import Blocks, Fetch


@dataclass
class Context:
    """What a Byzantine node knows beyond its replica: its key, its peers, its accomplices."""

    me: str
    replicas: tuple[str, ...]
    signer: Signer
    rng: random.Random
    colluders: frozenset[str] = frozenset()
    delay: int = 200_000_000  # ns, for Delay
    honest_groups: tuple[tuple[str, ...], tuple[str, ...]] = field(default=((), ()))
    targets: tuple[str, ...] | None = None  # who gets the first version (None: a behaviour's default)
    kinds: frozenset[str] | None = None  # message kinds 'selective' restricts (None: all)

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(r for r in self.replicas if r != self.me)

    def halves(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        peers = self.peers
        return peers[0::2], peers[1::2]

    def split(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(targets, every other peer); without targets, the two halves."""
        if self.targets is None:
            return self.halves()
        first = tuple(p for p in self.peers if p in self.targets)
        return first, tuple(p for p in self.peers if p not in self.targets)


class Byzantine:
    """Base wrapper: forwards everything; subclasses override ``rewrite`` or ``step``."""

    name = "byzantine"

    def __init__(self, inner: Replica, ctx: Context):
        self.inner = inner
        self.ctx = ctx

    def __getattr__(self, attr):  # view, active, log, ... for status and tests
        if attr == "inner" or attr.startswith("__"):
            raise AttributeError(attr)  # (copy and pickle probe these before ``inner`` exists)
        return getattr(self.inner, attr)

    def step(self, event) -> list[Effect]:
        return self.rewrite(self.inner.step(event))

    def deliver(self, env, now: int) -> list[Effect]:
        # Never let the fast path reach the inner replica around the wrapper.
        return self.step(Receive(now, env))

    def rewrite(self, effects: list[Effect]) -> list[Effect]:
        return effects


def _sends(kind) -> bool:
    return kind in (Broadcast, Send, Forward)


class Silent(Byzantine):
    """Sends nothing at all (a crashed node that still looks alive to itself)."""

    name = "silent"

    def rewrite(self, effects):
        return [e for e in effects if not _sends(type(e))]


class SilentPrimary(Byzantine):
    """Votes like everyone else, but as primary never proposes (nor installs a view)."""

    name = "silent-primary"

    def rewrite(self, effects):
        return [e for e in effects
                if not (type(e) is Broadcast and type(e.message) in (PrePrepare, NewView))]


def variant(block: Block, timestamp: int) -> Block:
    """The same proposal with another timestamp: another hash for the same height."""
    header = replace(block.header, timestamp=timestamp)
    return Block(header, block.requests, header.compute_hash())


class _TwoStories(Byzantine):
    """Tells ``targets`` (default: half of its peers) the truth in its broadcasts of
    ``kind``, and the rest of its peers ``other_story`` instead."""

    kind: type

    def other_story(self, m) -> list:
        raise NotImplementedError

    def rewrite(self, effects):
        out = []
        for e in effects:
            if type(e) is Broadcast and type(e.message) is self.kind:
                m = e.message
                first, rest = self.ctx.split()
                out.append(Send(self.ctx.me, m))  # its own replica keeps the first version
                out.extend(Send(p, m) for p in first)
                for lie in self.other_story(m):
                    out.extend(Send(p, lie) for p in rest)
            else:
                out.append(e)
        return out


class Equivocate(_TwoStories):
    """As primary, sends one block to ``targets`` (default: half of its peers) and a
    different one to the rest."""

    name, kind = "equivocate", PrePrepare

    def other_story(self, m):
        other = variant(m.block, m.block.header.timestamp + 1)
        return [PrePrepare(m.view, m.seq, other.hash, other)]


class ConflictingVotes(Byzantine):
    """Votes for the real block to half of its peers and for a made-up one to the rest."""

    name = "conflicting-votes"

    def rewrite(self, effects):
        out = []
        for e in effects:
            if type(e) is Broadcast and type(e.message) in (Prepare, Commit):
                m = e.message
                fake = type(m)(m.view, m.seq, "%064x" % self.ctx.rng.getrandbits(256))
                first, second = self.ctx.halves()
                out.append(Send(self.ctx.me, m))
                out.extend(Send(p, m) for p in first)
                out.extend(Send(p, fake) for p in second)
            else:
                out.append(e)
        return out


class ForgeSignatures(Byzantine):
    """Sends its messages with corrupted signatures, and messages forged in others' names."""

    name = "forge-signatures"

    def rewrite(self, effects):
        out = []
        for e in effects:
            if type(e) is Broadcast:
                env = self.ctx.signer.sign(e.message)
                bad = replace(env, signature=bytes(b ^ 0x5A for b in env.signature))
                victim = self.ctx.rng.choice(self.ctx.peers)
                impersonated = replace(env, signer=victim)  # someone else's name on our signature
                out.extend(Forward(p, bad) for p in self.ctx.peers)
                out.extend(Forward(p, impersonated) for p in self.ctx.peers)
            elif not _sends(type(e)):
                out.append(e)
        return out


class Replay(Byzantine):
    """Behaves, and also re-sends old messages it received from others."""

    name = "replay"
    MEMORY = 256

    def __init__(self, inner, ctx):
        super().__init__(inner, ctx)
        self.seen: list[Signed] = []

    def step(self, event):
        if type(event) is Receive and event.envelope.signer != self.ctx.me:
            self.seen.append(event.envelope)
            if len(self.seen) > self.MEMORY:
                del self.seen[: self.MEMORY // 2]
        effects = self.inner.step(event)
        if self.seen and any(type(e) is Broadcast for e in effects):
            old = self.ctx.rng.choice(self.seen)
            effects = effects + [Forward(p, old) for p in self.ctx.peers]
        return effects


class Delay(Byzantine):
    """Holds every message it sends for ``delay`` before releasing it."""

    name = "delay"
    TIMER = "byzantine-delay"

    def __init__(self, inner, ctx):
        super().__init__(inner, ctx)
        self.held: list[Effect] = []

    def step(self, event):
        if type(event) is TimerFired and event.name == self.TIMER:
            released, self.held = self.held, []
            return released
        effects = self.inner.step(event)
        out = []
        for e in effects:
            if _sends(type(e)):
                if not self.held:
                    out.append(StartTimer(self.TIMER, self.ctx.delay))
                self.held.append(e)
            else:
                out.append(e)
        return out


class LyingCheckpoints(Byzantine):
    """Claims a different state in every checkpoint it sends."""

    name = "lying-checkpoints"

    def rewrite(self, effects):
        out = []
        for e in effects:
            if type(e) is Broadcast and type(e.message) is Checkpoint:
                m = e.message
                lie = Checkpoint(m.seq, m.block_hash, "%064x" % self.ctx.rng.getrandbits(256))
                out.append(Send(self.ctx.me, m))  # it knows the truth itself
                out.extend(Send(p, lie) for p in self.ctx.peers)
            else:
                out.append(e)
        return out


class Fork(Byzantine):
    """Colluders that split the honest nodes in two and commit a different block in each
    half. With at most f colluders no half reaches a quorum; with f + 1 both do, and the
    chain forks: the teaching scenario for why n >= 3f + 1 matters.

    The primary (if a colluder) proposes two versions told apart by timestamp parity;
    every colluder votes for the even one to one half and the odd one to the other.
    """

    name = "fork"

    def step(self, event):
        extra: list[Effect] = []
        if type(event) is Receive:
            env = event.envelope
            m = env.message
            if type(m) is PrePrepare and env.signer in self.ctx.colluders and env.signer != self.ctx.me:
                extra = self._vote_for(m)
        effects = self.inner.step(event)
        out = []
        for e in effects:
            if type(e) is Broadcast and type(e.message) is PrePrepare:
                out.extend(self._propose_two(e.message))
            elif type(e) is Broadcast and type(e.message) in (Prepare, Commit):
                continue  # colluders vote only as scripted
            else:
                out.append(e)
        return out + extra

    def _propose_two(self, m: PrePrepare) -> list[Effect]:
        base = m.block.header.timestamp
        even = variant(m.block, base + (base % 2))
        odd = variant(m.block, even.header.timestamp + 1)
        out: list[Effect] = [Send(self.ctx.me, PrePrepare(m.view, m.seq, even.hash, even))]
        for block, half in ((even, self.ctx.honest_groups[0]), (odd, self.ctx.honest_groups[1])):
            pre = PrePrepare(m.view, m.seq, block.hash, block)
            out.extend(Send(p, pre) for p in (*half, *sorted(self.ctx.colluders - {self.ctx.me})))
            out.extend(Send(p, Commit(m.view, m.seq, block.hash)) for p in half)
        return out

    def _vote_for(self, m: PrePrepare) -> list[Effect]:
        half = self.ctx.honest_groups[m.block.header.timestamp % 2]
        out: list[Effect] = []
        for vote in (Prepare(m.view, m.seq, m.digest), Commit(m.view, m.seq, m.digest)):
            out.extend(Send(p, vote) for p in half)
        return out


def _kind(effect) -> str:
    return effect.envelope.message.KIND if type(effect) is Forward else effect.message.KIND


class Selective(Byzantine):
    """Sends the chosen kinds of message (``kinds``; default all) only to ``targets``:
    the rest of its peers never hear them. Everything else it sends as usual."""

    name = "selective"

    def rewrite(self, effects):
        kinds, targets = self.ctx.kinds, self.ctx.split()[0]
        out = []
        for e in effects:
            kind = type(e)
            if not _sends(kind) or (kinds is not None and _kind(e) not in kinds):
                out.append(e)
            elif kind is Broadcast:
                out.append(Send(self.ctx.me, e.message))  # it still counts its own message
                out.extend(Send(p, e.message) for p in targets)
            elif e.to in targets or e.to == self.ctx.me:
                out.append(e)
        return out


def _own_block(block: Block, view: int, me: str) -> Block:
    """A different block for the same height, proposed in ``view`` by ``me``."""
    header = replace(block.header, view=view, proposer=me, timestamp=block.header.timestamp + 1)
    return Block(header, block.requests, header.compute_hash())


class SplitNewView(_TwoStories):
    """A new primary that installs its view with a valid NEW-VIEW for ``targets`` only,
    and tells every other peer a different story: its own block for each sequence the
    NEW-VIEW re-issues (of those whose block it holds), with its COMMIT for it. Replicas
    that enter the view without that view's NEW-VIEW would accept the other block."""

    name, kind = "split-new-view", NewView

    def other_story(self, m):
        out = []
        for pre in m.pre_prepares:
            # O names blocks by digest: a variant only of a block this replica holds.
            block = self.inner.held_block(pre.seq, pre.digest)
            if block is None:
                continue
            other = _own_block(block, m.view, self.ctx.me)
            out += [PrePrepare(m.view, pre.seq, other.hash, other), Commit(m.view, pre.seq, other.hash)]
        return out


class TwoNewViews(_TwoStories):
    """A new primary holding more than a quorum of VIEW-CHANGEs builds two valid
    NEW-VIEWs from different quorums: one for ``targets``, the other for the rest."""

    name, kind = "two-new-views", NewView

    def other_story(self, m):
        return [self._other(m)]

    def _other(self, m: NewView) -> NewView:
        inner = self.inner
        votes = inner.view_changes.get(m.view, {})
        used = {v.signer for v in m.view_changes}
        # Prefer the VIEW-CHANGEs the first NEW-VIEW left out.
        order = sorted(votes, key=lambda s: (s in used, s))
        chosen = tuple(sorted((votes[s] for s in order[: inner.q]), key=lambda env: env.signer))
        computed = inner._compute_o([env.message for env in chosen])
        if computed is None:
            return m
        # O names blocks by digest, as the replica's own NEW-VIEW does (the caller signs them).
        return NewView(m.view, chosen, tuple(PrePrepare(m.view, pp.seq, pp.digest, None) for pp in computed[2]))


class ForgedViewChange(Byzantine):
    """Its VIEW-CHANGEs omit every prepared certificate it holds and present the
    oldest stable point there is (the genesis, which needs no proof)."""

    name = "forged-view-change"

    def rewrite(self, effects):
        out = []
        for e in effects:
            if type(e) is Broadcast and type(e.message) is ViewChange:
                out.append(Broadcast(ViewChange(e.message.view, 0, (), ())))
            else:
                out.append(e)
        return out


# ---- Byzantine state transfer: a wrapper that behaves, and a syncer that lies --------


class WithholdingSyncer(Syncer):
    """Never answers a FETCH."""

    def on_fetch(self, env: Signed, t: int) -> int:
        return t


class EmptySyncer(Syncer):
    """Answers every FETCH with no blocks, as if it had none."""

    def on_fetch(self, env: Signed, t: int) -> int:
        return self.node.send_signed(env.signer, Blocks(()), t)


class StaleSyncer(Syncer):
    """Answers with the oldest blocks it holds, below what was asked."""

    def on_fetch(self, env: Signed, t: int) -> int:
        m: Fetch = env.message
        entries = self.node.ledger.entries[: max(0, min(m.from_height - 1, 3))]
        return self.node.send_signed(env.signer, Blocks(tuple((e.block, e.certificate) for e in entries)), t)


class WrongSyncer(Syncer):
    """Answers with blocks of its own making: the right heights and links, but with
    another block's certificate."""

    def on_fetch(self, env: Signed, t: int) -> int:
        m: Fetch = env.message
        ledger = self.node.ledger.entries
        out = []
        for e in ledger[m.from_height - 1:min(m.to_height, len(ledger))]:
            block = _own_block(e.block, e.block.header.view, self.node.id)
            out.append((block, e.certificate))
        return self.node.send_signed(env.signer, Blocks(tuple(out)), t)


class _SyncLiar(Byzantine):
    """The replica behaves; the node's state transfer lies (see ``syncer``)."""

    syncer: type[Syncer] = Syncer


class WithholdBlocks(_SyncLiar):
    name, syncer = "withhold-blocks", WithholdingSyncer


class EmptyBlocks(_SyncLiar):
    name, syncer = "empty-blocks", EmptySyncer


class StaleBlocks(_SyncLiar):
    name, syncer = "stale-blocks", StaleSyncer


class WrongBlocks(_SyncLiar):
    name, syncer = "wrong-blocks", WrongSyncer


BEHAVIOURS = {cls.name: cls for cls in (Silent, SilentPrimary, Equivocate, ConflictingVotes, ForgeSignatures,
                                        Replay, Delay, LyingCheckpoints, Fork, Selective, SplitNewView,
                                        TwoNewViews, ForgedViewChange, WithholdBlocks, EmptyBlocks, StaleBlocks,
                                        WrongBlocks)}


def wrap(behaviour: str, inner: Replica, ctx: Context) -> Byzantine:
    return BEHAVIOURS[behaviour](inner, ctx)


def syncer_for(behaviour: str | None) -> type[Syncer]:
    """The state-transfer server a node with this behaviour runs (the honest one for most)."""
    return getattr(BEHAVIOURS.get(behaviour), "syncer", Syncer) if behaviour else Syncer
