"""A PBFT replica as a pure state machine (Castro & Liskov, OSDI'99, section 4).

``Replica.step(event) -> list[Effect]``. The caller authenticates messages
(and every envelope embedded in them) before they arrive here, signs and sends
what ``Broadcast``/``Send`` ask, runs timers, executes committed blocks
(answering ``Executed``) and fetches missing ones when asked (answering
``Adopted``).

Blocks are proposed one at a time (a new PRE-PREPARE only after the previous block
executed): its header then names the previous block's hash and state root, so
the hash that COMMITs sign covers the whole chain and every backup can check a
proposal against its own state before it prepares it. One consequence: honest
replicas never prepare a sequence above one they have not executed, so the
view-change set of prepared sequences has no gaps and needs no null requests.

Beyond the paper:
- a replica that holds a quorum of matching COMMITs for a block it has (a commit
  certificate) executes it even if it missed the prepares: a quorum of commits
  implies f + 1 honest replicas prepared it, so this only helps a replica that
  lags or is between views to keep up;
- a replica that sees f + 1 distinct replicas working in a higher view (PREPAREs,
  COMMITs, PRE-PREPAREs) asks them for that view's NEW-VIEW (NEW-VIEW-REQUEST) and
  enters the view only through it, after checking it like any other: at least one
  of them is honest and holds the NEW-VIEW that installed the view. This brings
  back a replica that missed a NEW-VIEW (crashed, partitioned) without letting it
  skip the view's O set.

Crash-recovery: before any message that depends on it leaves, the replica emits
``Persist`` effects with its durable protocol state (consensus/durable.py); a
restarted replica is rebuilt from it (``Replica.restore``) and told ``Restarted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Callable

from .block import MAX_BLOCK_BYTES, Block, BlockHeader, tx_root
from .durable import (Accepted, DurableState, NewViewBuilt, Prepared, Proposed, Stabilised, ViewChangeSent,
                      ViewInstalled)
from .effects import Broadcast, CancelTimer, CatchUp, Drop, Effect, Execute, Forward, Persist, Send, StartTimer
from .events import Adopted, Event, Executed, Receive, Restarted, TimerFired
from .executed import ExecutedIds, ExecutedIndex
from .messages import (BlockReply, BlockRequest, Checkpoint, Commit, NewView, NewViewRequest, PrePrepare, Prepare,
                       PreparedProof, Request, Signed, ViewChange, with_block)
from .quorum import max_faulty, quorum, weak_quorum

NOTHING: list = []
BATCH_TIMER = "batch"
VIEW_TIMER = "view-change"
RESEND_TIMER = "view-change-resend"
FETCH_TIMER = "fetch"
BLOCK_TIMER = "block-fetch"
MAX_FUTURE_VIEWS = 16  # how far ahead of its own view a replica keeps messages
CLIENT_SHARE = 4  # one client may hold at most 1/CLIENT_SHARE of the requests waiting to be ordered
MAX_BACKOFF = 10  # the view-change timeout doubles at most this many times
NEW_VIEWS_KEPT = 3  # NEW-VIEWs a replica keeps to serve peers that missed them
PROPOSE_AHEAD = 1_000_000  # ns a primary may date a block after its own clock (blocks in one instant)


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
    view_change_timeout: int = 500_000_000  # ns a backup waits for a request to execute
    max_pending: int = 2000  # requests held waiting to be ordered; more are refused (back-pressure)
    # Once the pool is half full and another client has requests waiting, one client may
    # hold at most max_pending // CLIENT_SHARE of them (``mempool-client-full``), so a
    # client flooding with valid requests cannot fill the pool for every other client.
    # Block time is calendar time (ns since 1970): the replica's time plus epoch_ns. A
    # backup takes a fresh proposal only if its timestamp is at most max_clock_skew ahead
    # of its own calendar clock and at most max_clock_skew + view_change_timeout behind
    # it, so a faulty primary cannot date a block (and the requests judged by that date,
    # node/membership.py) outside that window (docs/messages.md, "Block time").
    epoch_ns: int = 0
    max_clock_skew: int = 1_000_000_000
    # (request, block timestamp) -> may it be ordered in a block of that date? The node
    # judges its client's certificate then; a primary leaves out what its backups would
    # refuse the whole block for. None: every request may.
    request_valid_at: Callable[[Signed, int], bool] | None = field(default=None, compare=False, repr=False)
    # Shared by the replicas of one process (the simulator), so executed request ids are
    # stored once, not once per replica (consensus/executed.py); None: a plain set.
    executed_index: ExecutedIndex | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.me not in self.replicas:
            raise ValueError(f"{self.me} is not a consensus member")
        if len(set(self.replicas)) != len(self.replicas):
            raise ValueError("replica ids must be distinct")
        if self.block_size < 1 or self.checkpoint_interval < 1:
            raise ValueError("block_size and checkpoint_interval must be >= 1")
        if self.watermark_window < self.checkpoint_interval:
            raise ValueError("watermark_window must be >= checkpoint_interval, or the log can never advance")


@dataclass(slots=True)
class BlockFetch:
    """A block the installed NEW-VIEW re-issues by digest and this replica does not hold,
    or (``for_view``) one a VIEW-CHANGE names that this replica, primary of that view,
    must hold before it builds its NEW-VIEW on that VIEW-CHANGE.

    ``holders``: the replicas whose VIEW-CHANGE claimed it prepared it, then the other
    signers of those prepared certificates (a certificate is a quorum: its honest
    PREPARE signers, at least f, accepted the pre-prepare with its block; docs/messages.md,
    "Blocks by digest", point 3, and its known gap). Asked one at a time, the
    next one each BLOCK_TIMER. ``pre``: the NEW-VIEW's signed pre-prepare to take up
    once the block is here; None once this replica moved on to a further view (the
    block, if it comes, is kept: the next NEW-VIEW may re-issue it again)."""

    seq: int
    digest: str
    holders: tuple[str, ...]
    pre: Signed | None
    tries: int = 0
    # The view whose NEW-VIEW this replica, its primary, is building: the block of a
    # VIEW-CHANGE it would build on (``pre`` is None then). -1: a block O re-issues.
    for_view: int = -1


@dataclass(frozen=True, slots=True)
class Restored:
    """What a recovering replica reads back from its own storage."""

    durable: DurableState  # its durable protocol state (consensus/durable.py)
    blocks: tuple[Block, ...]  # its ledger, from height 1
    last_certificate: tuple[Signed, ...]  # the commit certificate of its last block
    state_root: str


class Slot:
    """What the log holds for one sequence number."""

    __slots__ = ("seq", "view", "digest", "block", "pre_prepare", "prepares", "commits",
                 "prepared", "committed", "certificate", "proof", "seen_blocks")

    def __init__(self, seq: int):
        self.seq = seq
        self.view = -1  # view of the accepted pre-prepare
        self.digest: str | None = None
        self.block: Block | None = None
        self.pre_prepare: Signed | None = None
        # Votes may arrive before the pre-prepare, in several views, and (under
        # attack) for several digests: key them by (view, digest), then signer.
        self.prepares: dict[tuple[int, str], dict[str, Signed]] = {}
        self.commits: dict[tuple[int, str], dict[str, Signed]] = {}
        self.prepared = False
        self.committed = False
        self.certificate: tuple[Signed, ...] = ()
        self.proof: PreparedProof | None = None  # the highest-view prepared proof, for VIEW-CHANGE
        self.seen_blocks: dict[str, Block] = {}  # blocks seen for this sequence in any view


def _by_signer(envelopes) -> tuple[Signed, ...]:
    return tuple(sorted(envelopes, key=lambda e: e.signer))


class Replica:
    def __init__(self, config: ReplicaConfig):
        self.config = config
        self.n = len(config.replicas)
        self.f = max_faulty(self.n)
        self.q = quorum(self.n)
        self.weak = weak_quorum(self.n)  # f + 1: enough to include an honest replica
        self.me = config.me
        self.members = frozenset(config.replicas)
        # views
        self.view = 0  # the view this replica is in, or is changing to
        self.active = True  # False between sending VIEW-CHANGE and installing the view
        self.installed_view = 0
        self.vc_attempts = 0  # view changes since the last progress: the timeout doubles each
        self.view_changes: dict[int, dict[str, Signed]] = {}
        self.new_views_done: set[int] = set()  # views whose NEW-VIEW it accepted or (as primary) built
        self.new_view_envs: dict[int, Signed] = {}  # the last few NEW-VIEWs it accepted, to serve
        self.future: dict[tuple[int, int], Signed] = {}  # (view, seq) -> pre-prepare for a view not entered
        self.evidence: dict[int, set[str]] = {}  # view above ours -> replicas seen working in it
        self.asked: dict[int, set[str]] = {}  # view -> replicas asked for its NEW-VIEW
        self.sent_view_change: ViewChange | None = None  # the VIEW-CHANGE for ``view`` while not active
        self.reproposals: dict[int, PrePrepare] = {}  # own proposals of this view read back after a restart
        self.decided = 0  # min-s of the installed NEW-VIEW: no pre-prepare of this view may name it or below
        self.reissue: tuple[Signed, ...] = ()  # O of the installed NEW-VIEW, to take up again after a restart
        self.reissue_proof: tuple[Signed, ...] = ()  # that NEW-VIEW's VIEW-CHANGEs: who holds O's blocks
        self.answered: dict[str, int] = {}  # replica -> when we last answered its stale VIEW-CHANGE
        self.served: dict[tuple[str, int], int] = {}  # (replica, view) -> when we last sent it that NEW-VIEW
        self.far_ahead: dict[str, Signed] = {}  # replica -> its newest VIEW-CHANGE beyond MAX_FUTURE_VIEWS
        self.far_working: dict[str, int] = {}  # replica -> newest view beyond MAX_FUTURE_VIEWS it voted in
        self.sent_view_changes: dict[int, ViewChange] = {}  # since the last view installed, for answers
        # watermarks and checkpoints
        self.low = 0  # h: sequence of the last stable checkpoint
        self.window = config.watermark_window
        self.stable_proof: tuple[Signed, ...] = ()
        self.checkpoints: dict[int, dict[tuple[str, str], dict[str, Signed]]] = {}
        self.ahead: dict[str, Signed] = {}  # newest checkpoint per replica, beyond our window
        # execution
        self.executed = 0  # last sequence the caller executed
        self.delivered = 0  # last sequence handed out in an Execute effect
        self.last_proposed = 0
        self.head_hash = config.genesis_hash
        self.head_timestamp = -1
        self.state_root = config.genesis_state_root
        self.hash_at: dict[int, str] = {}  # executed sequence above h -> block hash
        self.last_certificate: tuple[Signed, ...] = ()  # commit certificate of the last executed block
        self.catchup_target = 0
        # the log and requests
        self.log: dict[int, Slot] = {}
        self.deferred: dict[int, tuple[Signed, bool]] = {}  # pre-prepares waiting for the block below
        self.pending: dict[str, Signed] = {}  # request id -> request, in arrival order
        self.pending_of: dict[str, int] = {}  # client -> its requests in ``pending`` (only clients with some)
        self.accepted: dict[str, Signed] = {}  # requests in accepted, not yet executed blocks
        index = config.executed_index
        self.done: set[str] | ExecutedIds = set() if index is None else index.executed()  # request ids executed
        # timers
        self.batch_timer = False
        self.batch_due = False
        self.vc_timer = False
        self.fetch_timer = False
        self.resend_timer = False
        self.block_timer = False
        # Blocks the installed NEW-VIEW names that this replica must fetch, by digest: at most
        # one per sequence of O, so at most watermark_window (replaced by each NEW-VIEW).
        self.fetching: dict[str, BlockFetch] = {}
        # Blocks a new primary fetched for the VIEW-CHANGEs it builds its NEW-VIEW on, by
        # digest: at most n x watermark_window (one view's), emptied once its NEW-VIEW is
        # taken up or it moves on to another view.
        self.new_view_blocks: dict[str, Block] = {}
        # O's sequences above the high watermark, with their digests: the installed
        # NEW-VIEW's min-s is past this replica's stable point (it is behind), so these
        # pre-prepares wait in ``deferred`` (and their votes in the log) until state
        # transfer brings the window up to them. At most watermark_window entries (O lies
        # in (min-s, min-s + L]); replaced by each NEW-VIEW, emptied by a view change.
        self.kept_above: dict[int, str] = {}
        self.blocks_served: dict[tuple[str, str], int] = {}  # (replica, digest) -> when we last sent it
        self.stalled = 0  # a sequence seen accepted but uncommitted at the last fetch tick
        self.ahead_hint = 0  # highest sequence any vote named: others may be past us
        self._handlers = {
            Request: self._on_request,
            PrePrepare: self._receive_pre_prepare,
            Prepare: self._on_prepare,
            Commit: self._on_commit,
            Checkpoint: self._on_checkpoint,
            ViewChange: self._on_view_change,
            NewView: self._on_new_view,
            NewViewRequest: self._on_new_view_request,
            BlockRequest: self._on_block_request,
            BlockReply: self._on_block_reply,
        }

    @classmethod
    def restore(cls, config: ReplicaConfig, saved: Restored) -> "Replica":
        """A replica restarting from its own storage: its durable protocol state and its
        ledger. Its volatile log (votes received, requests waiting) is gone. Step it
        with ``Restarted`` next, so it re-arms its timers."""
        r = cls(config)
        d = saved.durable
        r.view, r.active, r.installed_view = d.view, d.active, d.installed_view
        r.sent_view_change = d.view_change if not d.active else None
        r.sent_view_changes = dict(d.view_changes_sent)
        if d.new_view is not None:
            r.new_view_envs[d.installed_view] = d.new_view
            r.decided = max(env.message.stable_seq for env in d.new_view.message.view_changes)
        r.new_views_done.update(v for v in (d.installed_view, d.built_new_view) if v)
        # Everything in its own ledger is committed: the last block's commit
        # certificate proves it as well as a checkpoint would.
        proof = saved.last_certificate
        if d.stable_proof and (not proof or d.stable_seq > proof[0].message.seq):
            proof = d.stable_proof
        r.stable_proof = proof
        r.low = proof[0].message.seq if proof else 0
        r.last_certificate = saved.last_certificate
        for block in saved.blocks:
            r.done |= block.ids
            if block.height > r.low:
                r.hash_at[block.height] = block.hash
        if saved.blocks:
            last = saved.blocks[-1]
            r.executed = r.delivered = r.last_proposed = last.height
            r.head_hash = last.hash
            r.head_timestamp = last.header.timestamp
        r.state_root = saved.state_root
        r._restore_log(d)
        return r

    def _restore_log(self, d: DurableState) -> None:
        """Prepared certificates (for VIEW-CHANGEs) and this view's pre-prepares and
        proposals (so it never accepts or proposes a second one for a sequence)."""
        above = max(self.low, self.executed)
        for seq, proof in d.prepared.items():
            if seq > self.low:
                slot = self._slot(seq)
                slot.proof = proof
                m = proof.pre_prepare.message
                if m.block is not None:  # a commit certificate, or a peer's BLOCK-REQUEST, may name it
                    slot.seen_blocks.setdefault(m.digest, m.block)
        working = self.active
        for seq, env in sorted(d.accepted.items()):
            m = env.message
            if seq > self.low and m.block is not None:
                self._slot(seq).seen_blocks.setdefault(m.digest, m.block)
            if seq <= above or not working or m.view != self.view:
                continue
            slot = self._slot(seq)
            slot.view, slot.digest, slot.block, slot.pre_prepare = m.view, m.digest, m.block, env
            proof = slot.proof
            slot.prepared = proof is not None and (proof.pre_prepare.message.view, proof.pre_prepare.message.digest) \
                == (m.view, m.digest)
            for req in m.block.requests:
                self.accepted[req.digest] = req
        if working and d.new_view is not None and d.installed_view == self.view:
            # The NEW-VIEW assigned O's sequences in this view: the primary proposes
            # nothing else there, and every replica takes O up again on Restarted (a
            # backup may have held an entry back, waiting for the block below).
            o = d.new_view.message.pre_prepares
            self.last_proposed = max(self.last_proposed, self.decided, max((p.message.seq for p in o), default=0))
            self.reissue = tuple(p for p in o if p.message.seq > above)
            self.reissue_proof = d.new_view.message.view_changes
        for seq, m in sorted(d.proposed.items()):
            if seq > above and working and m.view == self.view and self.me == self.primary:
                self.last_proposed = max(self.last_proposed, seq)
                self.reproposals[seq] = m

    # ---- queries -------------------------------------------------------------

    def primary_of(self, view: int) -> str:
        return self.config.replicas[view % self.n]

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
        if kind is Adopted:
            return self._on_adopted(event)
        if kind is Restarted:
            return self._on_restarted(event.now)
        raise LocalProtocolError(f"unknown event {event!r}")

    def deliver(self, env: Signed, now: int) -> list[Effect]:
        """Exactly ``step(Receive(now, env))``, without building the event: the simulator
        calls it once per delivered copy of a message."""
        handler = self._handlers.get(type(env.message))
        if handler is None:
            return [Drop("unexpected-message", env)]
        return handler(env, now)

    def is_replay(self, env: Signed) -> bool:
        """Will this VIEW-CHANGE or NEW-VIEW be refused, or answered from our own state,
        without its contents being used (a replay, a duplicate, a stale one)? Then the
        caller need not authenticate the envelopes it carries: a replayed NEW-VIEW costs
        a look-up, not a re-check of a quorum of VIEW-CHANGEs and their proofs."""
        m = env.message
        kind = type(m)
        if kind is NewView:
            return m.view < self.view or (m.view == self.view and self.active and m.view in self.new_views_done)
        if kind is ViewChange:
            if m.view < self.view or (m.view == self.view and self.active):
                return True  # stale: answered with what we hold (or refused), its proofs unused
            if m.view > self.view + MAX_FUTURE_VIEWS:
                known = self.far_ahead.get(env.signer)
                return known is not None and known.message.view >= m.view
            return env.signer in self.view_changes.get(m.view, ())
        return False

    # ---- requests and proposals (section 4.1, 4.2) ---------------------------------

    def _on_request(self, env: Signed, now: int) -> list[Effect]:
        rid = env.digest
        if rid in self.done or rid in self.pending or rid in self.accepted:
            return [Drop("duplicate-request", env)]
        if len(self.pending) >= self.config.max_pending:
            return [Drop("mempool-full", env)]  # the client will retry
        held = self.pending_of.get(env.signer, 0)
        # A client's share binds only while it matters to another client: once the pool is
        # half full and some other client has requests waiting. Refusing a lone busy client
        # would only make it retry to every node, whose request timers would then blame
        # an honest primary for what it refused (review revfq, R4).
        if (held >= self.client_share and 2 * len(self.pending) >= self.config.max_pending
                and len(self.pending_of) > (1 if held else 0)):
            return [Drop("mempool-client-full", env)]  # its share is full: the others' is not
        if len(env.data) > MAX_BLOCK_BYTES:
            return [Drop("oversized-request", env)]  # no block could hold it
        self.pending[rid] = env
        self.pending_of[env.signer] = held + 1
        if self.active and self.me == self.primary:
            return self._maybe_propose(now)
        # A backup relays to the primary (section 4.1) and keeps the request, so
        # its timer tells when the primary fails to order it.
        effects: list[Effect] = [Forward(self.primary, env)]
        effects.extend(self._request_timer(restart=False))
        return effects

    def _maybe_propose(self, now: int) -> list[Effect]:
        if (not self.active or self.me != self.primary or self.last_proposed > self.executed
                or not self.pending):
            return NOTHING
        seq = self.executed + 1
        if seq > self.high:
            return NOTHING  # wait for a checkpoint to become stable
        if len(self.pending) < self.config.block_size and not self.batch_due:
            if self.batch_timer:
                return NOTHING
            self.batch_timer = True
            return [StartTimer(BATCH_TIMER, self.config.batch_timeout)]
        early = self.head_timestamp + 1 - (self.config.epoch_ns + now)
        if early > PROPOSE_AHEAD:
            # The last block is dated after our clock (its primary's clock ran ahead):
            # dated after it, ours could be too far ahead of a slow backup's clock. Wait
            # until our clock nears it (at most twice the skew, for an honest quorum took it).
            if self.batch_timer:
                return NOTHING
            self.batch_timer = True
            return [StartTimer(BATCH_TIMER, early - PROPOSE_AHEAD)]
        effects: list[Effect] = []
        if self.batch_timer:
            self.batch_timer = False
            effects.append(CancelTimer(BATCH_TIMER))
        self.batch_due = False
        timestamp = max(self.config.epoch_ns + now, self.head_timestamp + 1)
        lapsed = self._drop_lapsed(timestamp)
        if lapsed:
            effects.extend(lapsed)
            if not self.pending:
                return effects
        requests = self._next_block_requests()
        header = BlockHeader(
            chain_id=self.config.chain_id, height=seq, prev_hash=self.head_hash,
            tx_root=tx_root(requests), state_root=self.state_root, view=self.view,
            proposer=self.me, timestamp=timestamp)
        block = Block(header, requests, header.compute_hash())
        self.last_proposed = seq
        proposal = PrePrepare(self.view, seq, block.hash, block)
        effects.append(Persist(Proposed(proposal)))
        effects.append(Broadcast(proposal))
        return effects

    def _drop_lapsed(self, timestamp: int) -> list[Effect]:
        """Forget the waiting requests whose clients' certificates do not hold at the date
        of the block about to be proposed: every honest backup would refuse the block."""
        valid = self.config.request_valid_at
        if valid is None:
            return NOTHING
        lapsed = [env for env in self.pending.values() if not valid(env, timestamp)]
        for env in lapsed:
            self._unhold(self.pending.pop(env.digest).signer)
        return [Drop("request-certificate-lapsed", env) for env in lapsed]

    def _next_block_requests(self) -> tuple[Signed, ...]:
        """The oldest pending requests, at most block_size of them and MAX_BLOCK_BYTES of
        signed bytes (what every peer's decoder takes: node/codec.py)."""
        out, size, limit = [], 0, self.config.block_size
        for env in self.pending.values():
            size += len(env.data)
            if size > MAX_BLOCK_BYTES or len(out) == limit:
                break
            out.append(env)
        return tuple(out)

    def _on_timer(self, event: TimerFired) -> list[Effect]:
        if event.name == BATCH_TIMER:
            self.batch_timer = False
            self.batch_due = True
            return self._maybe_propose(event.now)
        if event.name == FETCH_TIMER:
            self.fetch_timer = False
            return self._fetch_missing()
        if event.name == RESEND_TIMER:
            return self._resend_view_change()
        if event.name == BLOCK_TIMER:
            self.block_timer = False
            return self._ask_for_blocks()
        if event.name == VIEW_TIMER:
            self.vc_timer = False
            # Active: a request waited too long (section 4.4). Changing view: the
            # NEW-VIEW did not come in time, so try the next view (section 4.5.2).
            # Either way this replica may simply be behind (it was cut off while the
            # others went on): ask a peer for any blocks beyond its height.
            peers = tuple(r for r in self.config.replicas if r != self.me)
            effects: list[Effect] = []
            if self.active and self.pending:
                # The requests we waited on may be ours alone (their clients gave up, the
                # primary never got them): hand the oldest to every peer, so their timers
                # run too and a view change we need finds company. (One is enough for
                # that; the new primary gets the rest when the view changes.)
                oldest = next(iter(self.pending.values()))
                effects.extend(Forward(p, oldest) for p in peers)
            effects.extend(self._start_view_change(self.view + 1))
            return effects + [CatchUp(-1, peers)]
        raise LocalProtocolError(f"unknown timer {event.name!r}")

    @property
    def client_share(self) -> int:
        """The requests one client may have waiting: a fair part of the pool, at least one."""
        return max(1, self.config.max_pending // CLIENT_SHARE)

    def _unhold(self, client: str) -> None:
        left = self.pending_of[client] - 1
        if left:
            self.pending_of[client] = left
        else:
            del self.pending_of[client]

    def forget_requests(self, rids) -> bool:
        """Drop waiting requests the caller will not have ordered (their client's
        certificate no longer holds at its node, so no peer takes them from it either:
        waiting on them would only time out into a view change nobody joins). True if
        nothing waits any more: the request timer that fired has nothing to time out on."""
        for rid in rids:
            if rid in self.pending:
                self._unhold(self.pending.pop(rid).signer)
        if not self.active or self.pending or self.accepted:
            return False
        self.vc_timer = False
        return True

    def _request_timer(self, restart: bool) -> list[Effect]:
        """Section 4.4: a backup waiting to execute a request keeps a timer running."""
        if not self.active or self.me == self.primary:
            return NOTHING
        if self.pending or self.accepted:
            if restart or not self.vc_timer:
                self.vc_timer = True
                return [StartTimer(VIEW_TIMER, self._timeout())]
            return NOTHING
        if self.vc_timer:
            self.vc_timer = False
            return [CancelTimer(VIEW_TIMER)]
        return NOTHING

    def _timeout(self) -> int:
        """T while working; while changing view, T for the first NEW-VIEW awaited, then
        2T, 4T... for each view change that failed since the last progress."""
        attempts = self.vc_attempts if self.active else self.vc_attempts - 1
        return self.config.view_change_timeout << min(max(attempts, 0), MAX_BACKOFF)

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

    def _receive_pre_prepare(self, env: Signed, now: int) -> list[Effect]:
        """A pre-prepare off the network: its block time is judged against this replica's
        clock now, when it arrives, and again if held for a later view when that view
        comes (``_replay_future``); deferred for the block below, it is not judged again."""
        m: PrePrepare = env.message
        if m.view >= self.view:
            late = self._clock_refusal(m.block.header.timestamp, now)
            if late is not None:
                return [Drop(late, env)]
        return self._on_pre_prepare(env, now)

    def _clock_refusal(self, timestamp: int, now: int) -> str | None:
        clock = self.config.epoch_ns + now
        skew = self.config.max_clock_skew
        if timestamp > clock + skew:
            return "timestamp-too-far-ahead"
        if timestamp < clock - skew - self.config.view_change_timeout:
            return "timestamp-too-old"
        return None

    def _on_pre_prepare(self, env: Signed, now: int, reissued: bool = False) -> list[Effect]:
        m: PrePrepare = env.message
        if m.view < self.view:
            self._see_block(m)
            return [Drop("old-view", env)] + self._try_commit_all(self.log.get(m.seq))
        if m.view > self.view or not self.active:
            self._see_block(m)
            return self._hold_future(env, now)
        if env.signer != self.primary:
            return [Drop("pre-prepare-not-from-primary", env)]
        refused = self._in_window(env, m.seq)
        if refused:
            if reissued and m.block is not None and m.seq > self.high and self.kept_above.get(m.seq) == m.digest:
                # O's entry above our window (we are behind min-s): keep it, block and
                # all, until state transfer brings the window and the block below.
                self.deferred[m.seq] = (env, True)
                return NOTHING
            return [refused]
        slot = self._slot(m.seq)
        if slot.pre_prepare is not None and slot.view == m.view:
            return [Drop("duplicate" if slot.digest == m.digest else "conflicting-pre-prepare", env)]
        waiting = self.deferred.get(m.seq)
        if waiting is not None and waiting[0] is not env and waiting[0].message.view == m.view:
            return [Drop("duplicate" if waiting[0].message.digest == m.digest else "conflicting-pre-prepare", env)]
        if m.block is not None:  # (None only for a re-issued sequence we executed: see _take_up)
            slot.seen_blocks.setdefault(m.digest, m.block)
        if m.seq > self.executed + 1:
            # The header names the previous block's hash and state root: check it
            # once that block has executed here.
            self.deferred[m.seq] = (env, reissued)
            return self._try_commit_all(slot)
        self.deferred.pop(m.seq, None)
        if m.seq <= self.executed:
            # Only a NEW-VIEW re-issues a sequence we executed; it must be our block.
            if self.hash_at.get(m.seq, m.digest) != m.digest:
                return [Drop("reissued-block-conflicts-with-executed", env)]
        else:
            if m.block is None:  # (the node refuses one sent on its own; a proposal needs its block)
                return [Drop("malformed", env)]
            if m.seq <= self.decided and not reissued:
                return [Drop("sequence-decided-by-new-view", env)]
            reason = self._invalid_proposal(m, env.signer, reissued)
            if reason:
                return [Drop(reason, env)]
        block = m.block if m.block is not None else slot.seen_blocks.get(m.digest)
        slot.view, slot.digest, slot.block, slot.pre_prepare = m.view, m.digest, block, env
        slot.prepared = False
        effects: list[Effect] = []
        if m.seq > self.executed:
            effects.append(Persist(Accepted(env)))  # before our PREPARE: one pre-prepare per (view, seq)
            pending, accepted = self.pending, self.accepted
            if pending:
                for rid in m.block.ids & pending.keys():
                    self._unhold(pending.pop(rid).signer)
            for r in m.block.requests:
                accepted[r.digest] = r
        if self.me != self.primary:
            effects.append(Broadcast(Prepare(m.view, m.seq, m.digest)))
        effects.extend(self._advance(slot))
        effects.extend(self._request_timer(restart=False))
        if not slot.committed:
            effects.extend(self._arm_fetch())
        return effects

    def _invalid_proposal(self, m: PrePrepare, signer: str, reissued: bool) -> str | None:
        h = m.block.header
        if h.chain_id != self.config.chain_id:
            return "wrong-chain"
        if h.height != m.seq:
            return "height-mismatch"
        if not reissued and (h.view != m.view or h.proposer != signer):
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

    def _see_block(self, m: PrePrepare) -> None:
        """Remember a block proposed in another view: a commit certificate may name it."""
        if self.executed < m.seq <= self.high and m.block is not None:
            blocks = self._slot(m.seq).seen_blocks
            if len(blocks) < 4:
                blocks.setdefault(m.digest, m.block)

    def _hold_future(self, env: Signed, now: int) -> list[Effect]:
        m = env.message
        if m.view > self.view + MAX_FUTURE_VIEWS:
            return [Drop("too-far-ahead", env)] + self._note_far_working(m.view, env.signer)
        if not self.low < m.seq <= self.high + self.window:
            return [Drop("too-far-ahead", env)]
        if env.signer != self.primary_of(m.view):
            # Only that view's primary may fill a (view, seq) held for later: anyone else
            # would take the place of its real proposal.
            return [Drop("pre-prepare-not-from-primary", env)]
        self.future.setdefault((m.view, m.seq), env)
        return self._witness(m.view, env.signer, now)

    def _admit_vote(self, env: Signed, m, commits: bool) -> tuple[Slot, dict[str, Signed]] | Drop:
        """Check a PREPARE (``commits`` false) or COMMIT against view and watermarks and record it.

        The hottest code of a simulation (one call per vote delivered): kept flat, with
        each attribute read once."""
        view = m.view
        if view < self.installed_view:
            return Drop("old-view", env)
        if view > self.view + MAX_FUTURE_VIEWS:
            return Drop("too-far-ahead", env)
        seq = m.seq
        low = self.low
        if seq <= low:
            return Drop("stale", env)
        if seq > low + self.window and (view != self.view or (
                self.kept_above.get(seq) != m.digest if self.active else seq > low + 2 * self.window)):
            # Above the window: kept only for O's entries kept there (docs/messages.md, "A
            # replica behind min-s"), and while changing to ``view``, within one window
            # more, as O may re-issue them there (sorted out when its NEW-VIEW comes).
            return Drop("beyond-high-watermark", env)
        slot = self.log.get(seq)
        if slot is None:
            slot = self.log[seq] = Slot(seq)
        by_key = slot.commits if commits else slot.prepares
        votes = by_key.get((view, m.digest))
        signer = env.signer
        if votes is None:
            # A new digest for this (seq, view): an honest replica votes for one only, so
            # a signer already voting another is equivocating. Refusing it bounds the
            # digests a slot holds per view by n, whatever a faulty replica sends.
            for (v, _d), others in by_key.items():
                if v == view and signer in others:
                    return Drop("conflicting-vote", env)
            votes = by_key[(view, m.digest)] = {}
        elif signer in votes:
            return Drop("duplicate", env)
        votes[signer] = env
        if seq > self.ahead_hint:
            self.ahead_hint = seq
        return slot, votes

    def _on_prepare(self, env: Signed, now: int) -> list[Effect]:
        m: Prepare = env.message
        view = m.view
        if view < self.view:
            return [Drop("old-view", env)]
        if env.signer == self.config.replicas[view % self.n]:
            return [Drop("prepare-from-primary", env)]
        admitted = self._admit_vote(env, m, False)
        if type(admitted) is Drop:
            return [admitted] + self._note_far_working(view, env.signer)
        slot, votes = admitted
        if view > self.view or not self.active:
            return self._witness(view, env.signer, now)
        if slot.prepared or slot.digest != m.digest or slot.view != view or len(votes) < self.q - 1:
            return NOTHING
        return self._advance(slot)

    def _on_commit(self, env: Signed, now: int) -> list[Effect]:
        m: Commit = env.message
        admitted = self._admit_vote(env, m, True)
        if type(admitted) is Drop:
            return [admitted] + self._note_far_working(m.view, env.signer)
        slot, votes = admitted
        effects: list[Effect] = NOTHING
        view = m.view
        if view > self.view or (view == self.view and not self.active):
            effects = self._witness(view, env.signer, now)
        if m.seq > self.delivered + 1 and not self.fetch_timer:
            effects = effects + self._arm_fetch()
        if len(votes) < self.q or slot.committed:
            return effects
        return effects + self._try_commit(slot, (view, m.digest))

    def _advance(self, slot: Slot) -> list[Effect]:
        """prepared(m, v, n, i): the pre-prepare plus 2f prepares from distinct backups
        (q - 1 in general; see quorum.py). Then send COMMIT and see if it commits."""
        effects: list[Effect] = []
        key = (slot.view, slot.digest)
        if not slot.prepared and slot.pre_prepare is not None and self.active and slot.view == self.view:
            prepares = slot.prepares.get(key, {})
            if len(prepares) >= self.q - 1:
                slot.prepared = True
                slot.proof = PreparedProof(slot.pre_prepare, _by_signer(prepares.values()))
                effects.append(Persist(Prepared(slot.proof)))  # before our COMMIT, and for VIEW-CHANGEs
                effects.append(Broadcast(Commit(slot.view, slot.seq, slot.digest)))
        effects.extend(self._try_commit_all(slot))
        return effects

    def _try_commit_all(self, slot: Slot | None) -> list[Effect]:
        if slot is None or slot.committed:
            return NOTHING
        for key, votes in list(slot.commits.items()):
            if len(votes) >= self.q:
                return self._try_commit(slot, key)
        return NOTHING

    def _try_commit(self, slot: Slot, key: tuple[int, str]) -> list[Effect]:
        """committed-local: a quorum of matching COMMITs for a block this replica holds."""
        view, digest = key
        block = slot.block if slot.digest == digest else slot.seen_blocks.get(digest)
        if block is None:
            # Certified, but the block has not arrived. Commits are small and the
            # pre-prepare large, so give it a moment before fetching it from a peer.
            return self._arm_fetch()
        slot.committed = True
        slot.block, slot.digest = block, digest
        slot.certificate = _by_signer(slot.commits[key].values())
        effects = self._deliver_in_order()
        if self.delivered < slot.seq:
            effects.extend(self._arm_fetch())  # committed above a gap: a block below is missing
        return effects

    def _arm_fetch(self) -> list[Effect]:
        if self.fetch_timer:
            return NOTHING
        self.fetch_timer = True
        return [StartTimer(FETCH_TIMER, self.config.view_change_timeout // 4)]

    def _fetch_missing(self) -> list[Effect]:
        """Fetch up to the highest certified sequence if we still cannot execute it, or
        the next block if it has stayed uncommitted here for two ticks (its COMMITs
        were lost: peers that committed it can send it with its certificate)."""
        target, evidence = 0, None
        for seq, slot in self.log.items():
            if seq > self.delivered and seq > target:
                for votes in slot.commits.values():
                    if len(votes) >= self.q:
                        target, evidence = seq, votes
                        break
        effects: list[Effect] = []
        nxt = self.log.get(self.delivered + 1)
        if nxt is not None and nxt.pre_prepare is not None and not nxt.committed:
            if self.stalled == nxt.seq:
                target = max(target, nxt.seq)
                effects.extend(self._repeat_votes(nxt))
            else:
                self.stalled = nxt.seq
                effects.extend(self._arm_fetch())
        else:
            self.stalled = 0
        if self.ahead_hint > max(target, self.delivered + 1) and self.active:
            # Votes name sequences beyond anything we can place (we missed their blocks
            # and certificates, and the chain may have gone quiet): take what peers have.
            self.ahead_hint = 0
            target, evidence = -1, None
        if target:
            peers = evidence if evidence is not None else {r: None for r in self.config.replicas}
            effects.extend(self._catch_up(target, peers))
        return effects

    def _repeat_votes(self, slot: Slot) -> list[Effect]:
        """A block of this view stuck uncommitted for two ticks: one of its messages may
        have been lost (PBFT assumes retransmission), and if nobody committed it, no peer
        can send it with a certificate. Send our part again: the same messages."""
        if not self.active or slot.view != self.view:
            return NOTHING
        if self.me == self.primary:
            return [Forward(p, slot.pre_prepare) for p in self.config.replicas if p != self.me]
        out: list[Effect] = [Broadcast(Prepare(slot.view, slot.seq, slot.digest))]
        if slot.prepared:
            out.append(Broadcast(Commit(slot.view, slot.seq, slot.digest)))
        return out

    def _deliver_in_order(self) -> list[Effect]:
        effects: list[Effect] = []
        while True:
            slot = self.log.get(self.delivered + 1)
            if slot is None or not slot.committed:
                return effects
            self.delivered += 1
            effects.append(Execute(slot.block, slot.certificate))

    def _catch_up(self, target: int, evidence: dict) -> list[Effect]:
        """Ask the caller to fetch certified blocks up to ``target`` (-1: all peers have)."""
        if target != -1:
            if target <= self.catchup_target or target <= self.executed:
                return NOTHING
            self.catchup_target = target
        return [CatchUp(target, tuple(sorted(s for s in evidence if s != self.me)))]

    # ---- execution and checkpoints (section 4.3) ----------------------------------

    def _on_executed(self, event: Executed) -> list[Effect]:
        seq = event.seq
        if seq != self.executed + 1 or seq > self.delivered:
            raise LocalProtocolError(f"executed {seq} out of order (last executed {self.executed})")
        slot = self.log[seq]
        if event.block_hash != slot.digest:
            raise LocalProtocolError(f"executed block {seq} is not the committed one")
        self.last_certificate = slot.certificate
        effects = self._after_execution(slot.block, event.state_root, event.now)
        if seq == self.decided and self.low < seq:
            # min-s executed here, not adopted (the NEW-VIEW's commit certificate, while it
            # asked for state up to it): that certificate moves the window as state
            # transfer would, or O's entries kept above it wait for a checkpoint nobody
            # sends again (review revgap, R1).
            effects = effects + self._stabilise(seq, slot.certificate, event.now)
        return effects

    def _on_adopted(self, event: Adopted) -> list[Effect]:
        block = event.block
        if block.height != self.executed + 1:
            raise LocalProtocolError(f"adopted block {block.height} does not follow {self.executed}")
        self.delivered = max(self.delivered, block.height)
        self.last_certificate = event.certificate
        effects = self._after_execution(block, event.state_root, event.now)
        # A fetched block comes with its commit certificate, which proves the chain up
        # to it as well as a stable checkpoint does: move the window past it.
        effects = effects + self._stabilise(block.height, event.certificate, event.now)
        if any(slot.committed for seq, slot in self.log.items() if seq > self.delivered):
            effects.extend(self._arm_fetch())  # still a gap below blocks we hold certified
        return effects

    def _after_execution(self, block: Block, state_root: str, now: int) -> list[Effect]:
        seq = block.height
        self.executed = seq
        self.last_proposed = max(self.last_proposed, seq)
        self.head_hash = block.hash
        self.hash_at[seq] = block.hash
        self.head_timestamp = block.header.timestamp
        self.state_root = state_root
        ids = block.ids
        effects: list[Effect] = []
        fetch = self.fetching.pop(block.hash, None) if self.fetching else None
        if fetch is not None and fetch.pre is not None and self.active and fetch.pre.message.view == self.view:
            # A block O re-issues, executed meanwhile (a commit certificate, or state transfer):
            # take the pre-prepare up now, so our PREPARE still counts towards its quorum.
            effects.extend(self._on_pre_prepare(with_block(fetch.pre, block), now, reissued=True))
        if not self.active:
            # A new primary waiting for blocks its VIEW-CHANGEs name: what it executed
            # (state transfer, an old view's commit certificate) no longer keeps them out,
            # and a fetch just ended here will not bring a BLOCK-REPLY to try again on.
            effects.extend(self._maybe_new_view(self.view))
        accepted, pending = self.accepted, self.pending
        if accepted.keys() == ids:
            accepted.clear()  # the usual case: the only block in flight just executed
        elif accepted:
            for rid in ids & accepted.keys():
                del accepted[rid]
        if pending:
            for rid in ids & pending.keys():
                self._unhold(pending.pop(rid).signer)
        self.done |= ids
        if self.active:
            self.vc_attempts = 0  # progress: the next view change starts from the base timeout
        if seq % self.config.checkpoint_interval == 0:
            effects.append(Broadcast(Checkpoint(seq, block.hash, state_root)))
        effects.extend(self._request_timer(restart=True))
        waiting = self.deferred.pop(seq + 1, None)
        if waiting is not None:
            effects.extend(self._on_pre_prepare(waiting[0], now, waiting[1]))
        else:
            effects.extend(self._try_commit_all(self.log.get(seq + 1)))
        effects.extend(self._maybe_propose(now))
        return effects

    def _on_checkpoint(self, env: Signed, now: int) -> list[Effect]:
        m: Checkpoint = env.message
        if m.seq % self.config.checkpoint_interval:
            return [Drop("checkpoint-off-interval", env)]
        if m.seq <= self.low:
            return [Drop("stale", env)]
        if m.seq > self.high:
            return self._note_ahead(env)
        by_digest = self.checkpoints.get(m.seq)
        if by_digest is None:
            by_digest = self.checkpoints[m.seq] = {}
        votes = by_digest.get((m.block_hash, m.state_root))
        if votes is None:
            if any(env.signer in others for others in by_digest.values()):
                return [Drop("conflicting-vote", env)]  # one checkpoint per replica per sequence
            votes = by_digest[(m.block_hash, m.state_root)] = {}
        if env.signer in votes:
            return [Drop("duplicate", env)]
        votes[env.signer] = env
        if len(votes) < self.q:
            return NOTHING
        # Our own checkpoint must be among the matching ones: only then do we hold
        # the state the certificate vouches for. Without it we are behind.
        if self.me in votes:
            return self._stabilise(m.seq, _by_signer(votes.values()), now)
        if m.seq > self.executed:
            return self._catch_up(m.seq, votes)
        return NOTHING

    def _note_ahead(self, env: Signed) -> list[Effect]:
        """A checkpoint beyond our window: keep each replica's newest one. When f + 1
        replicas are past sequence s, at least one honest one is: fetch up to s."""
        known = self.ahead.get(env.signer)
        if known is None or known.message.seq < env.message.seq:
            self.ahead[env.signer] = env
        if len(self.ahead) <= self.f:
            return NOTHING
        seqs = sorted((e.message.seq for e in self.ahead.values()), reverse=True)
        target = seqs[self.f]
        return self._catch_up(target, {s: e for s, e in self.ahead.items() if e.message.seq >= target})

    def _stabilise(self, seq: int, proof: tuple[Signed, ...], now: int) -> list[Effect]:
        """A quorum of matching checkpoints: the checkpoint is stable; truncate the log."""
        if seq <= self.low:
            return NOTHING
        self.low = seq
        self.stable_proof = proof
        persisted = [Persist(Stabilised(seq, proof))]
        for table in (self.log, self.checkpoints, self.deferred, self.hash_at):
            for s in [s for s in table if s <= seq]:
                del table[s]
        for key in [k for k in self.future if k[1] <= seq]:
            del self.future[key]
        self.fetching = {d: f for d, f in self.fetching.items() if f.seq > seq}
        self.ahead = {s: e for s, e in self.ahead.items() if e.message.seq > self.high}
        if self.kept_above:
            self.kept_above = {s: d for s, d in self.kept_above.items() if s > self.high}
        waiting = self.deferred.get(self.executed + 1)
        if waiting is not None and self.executed + 1 <= self.high:
            # O's entry kept above the old window, its block below executed already:
            # the window now reaches it.
            del self.deferred[self.executed + 1]
            persisted.extend(self._on_pre_prepare(waiting[0], now, waiting[1]))
        return persisted + self._maybe_propose(now)

    # ---- view changes (section 4.4, 4.5.2) -------------------------------------

    def _start_view_change(self, view: int) -> list[Effect]:
        """Move to ``view``: stop working in the current one and multicast VIEW-CHANGE."""
        if view <= self.view:
            return NOTHING
        self.view = view
        self.active = False
        effects: list[Effect] = []
        if self.batch_timer:
            self.batch_timer = False
            effects.append(CancelTimer(BATCH_TIMER))
        # The stable point: the stable checkpoint, or the last executed block if its
        # commit certificate reaches higher (fewer sequences for the new view to redo).
        proof = self.stable_proof
        if self.last_certificate and (not proof or self.last_certificate[0].message.seq > proof[0].message.seq):
            proof = self.last_certificate
        stable_seq = proof[0].message.seq if proof else 0
        proofs = tuple(slot.proof for seq, slot in sorted(self.log.items())
                       if slot.proof is not None and seq > stable_seq)
        vc = self.sent_view_change = ViewChange(view, stable_seq, proof, proofs)
        self.sent_view_changes[view] = vc
        for v in sorted(self.sent_view_changes)[:-MAX_FUTURE_VIEWS]:
            del self.sent_view_changes[v]
        if self.vc_timer:  # a request timer: it must not move us on again by itself
            self.vc_timer = False
            effects.append(CancelTimer(VIEW_TIMER))
        effects.append(Persist(ViewChangeSent(vc)))
        effects.append(Broadcast(vc))  # our own copy comes back: _on_view_change arms the timer
        if not self.resend_timer:
            self.resend_timer = True
            effects.append(StartTimer(RESEND_TIMER, self.config.view_change_timeout))
        self.vc_attempts += 1
        self._forget_views_below(view)
        for fetch in self.fetching.values():
            fetch.pre = None  # that view's O is moot; a block that still comes is kept (BlockFetch)
        # That view's O entries kept above the window, and the votes there (for them, or
        # for the view left before its NEW-VIEW came), are moot too: the next NEW-VIEW
        # re-issues what it must, and the block is fetched again.
        for seq in self.kept_above:
            self.deferred.pop(seq, None)
        self.kept_above = {}
        high = self.high
        for seq in [s for s in self.log if s > high]:
            del self.log[seq]
        self.new_view_blocks = {}  # for a NEW-VIEW of the view we leave (bounded: one view's)
        return effects

    def _forget_views_below(self, view: int) -> None:
        for table in (self.evidence, self.asked):
            for v in [v for v in table if v < view]:
                del table[v]
        self.far_ahead = {s: e for s, e in self.far_ahead.items() if e.message.view >= view}
        self.far_working = {s: v for s, v in self.far_working.items() if v >= view}

    def _invalid_view_change(self, m: ViewChange) -> str | None:
        """The checks a replica applies to a VIEW-CHANGE before using it (section 4.4).

        The proof of the stable point is a quorum of matching CHECKPOINTs, or a commit
        certificate for that block: blocks chain by hash, so a committed block fixes
        everything below it."""
        if m.stable_seq:
            proof = m.checkpoint_proof
            seqs = {c.message.seq for c in proof}
            kinds = {type(c.message) for c in proof}
            if kinds == {Checkpoint}:
                digests = {(c.message.block_hash, c.message.state_root) for c in proof}
            elif kinds == {Commit}:
                digests = {(c.message.view, c.message.digest) for c in proof}
            else:
                return "bad-view-change-checkpoint"
            signers = {c.signer for c in proof}
            if seqs != {m.stable_seq} or len(digests) != 1 or len(signers) < self.q or not signers <= self.members:
                return "bad-view-change-checkpoint"
        elif m.checkpoint_proof:
            return "bad-view-change-checkpoint"
        seen = set()
        for proof in m.prepared:
            pp = proof.pre_prepare.message
            if pp.view >= m.view or proof.pre_prepare.signer != self.primary_of(pp.view):
                return "bad-view-change-prepared"
            if not m.stable_seq < pp.seq <= m.stable_seq + self.window or pp.seq in seen:
                return "bad-view-change-prepared"
            seen.add(pp.seq)
            voters = set()
            for p in proof.prepares:
                v = p.message
                if (v.view, v.seq, v.digest) != (pp.view, pp.seq, pp.digest) or p.signer == proof.pre_prepare.signer:
                    return "bad-view-change-prepared"
                voters.add(p.signer)
            if len(voters) < self.q - 1 or not voters <= self.members:
                return "bad-view-change-prepared"
        return None

    def _on_view_change(self, env: Signed, now: int) -> list[Effect]:
        m: ViewChange = env.message
        if m.view < self.view or (m.view == self.view and self.active):
            return self._answer_stale_view_change(env, now)
        # A replay costs a dictionary look-up, not a validation of its proofs.
        if m.view > self.view + MAX_FUTURE_VIEWS:
            known = self.far_ahead.get(env.signer)
            if known is not None and known.message.view >= m.view:
                return [Drop("duplicate", env)]
        elif env.signer in self.view_changes.get(m.view, ()):
            return [Drop("duplicate", env)]
        reason = self._invalid_view_change(m)
        if reason:
            return [Drop(reason, env)]
        effects: list[Effect] = []
        if m.view > self.view + MAX_FUTURE_VIEWS:
            # Far ahead (we were away while others changed view many times): keep only
            # each replica's newest, for the f + 1 rule below; memory stays bounded by n.
            known = self.far_ahead.get(env.signer)
            if known is not None and known.message.view >= m.view:
                return [Drop("duplicate", env)]
            self.far_ahead[env.signer] = env
        else:
            votes = self.view_changes.setdefault(m.view, {})
            if env.signer in votes:
                return [Drop("duplicate", env)]
            votes[env.signer] = env
        # Section 4.5.2: f + 1 replicas asking for views above ours cannot all be
        # faulty: join the smallest of those views without waiting for our timer.
        if m.view > self.view:
            asked = {s: v for v, votes in self.view_changes.items() if v > self.view for s in votes}
            for s, e in self.far_ahead.items():
                asked[s] = max(asked.get(s, 0), e.message.view)
            if len(asked) >= self.weak:
                effects.extend(self._start_view_change(min(sorted(asked.values(), reverse=True)[:self.weak])))
        # Section 4.5.2: the NEW-VIEW timer starts once a quorum of VIEW-CHANGEs for our
        # view arrived. A replica alone in a view change waits there (the others' next
        # view change finds it) rather than race through views nobody else will join.
        if not self.active and not self.vc_timer and len(self.view_changes.get(self.view, ())) >= self.q:
            self.vc_timer = True
            effects.append(StartTimer(VIEW_TIMER, self._timeout()))
        effects.extend(self._maybe_new_view(m.view))
        return effects

    def _answer_stale_view_change(self, env: Signed, now: int) -> list[Effect]:
        """A VIEW-CHANGE for a view we are past comes from a replica that missed what
        happened since (cut off, restarted, far behind), and re-sends it every timeout.
        Working in a view, answer with the NEW-VIEW that installed it (checked in full
        by the receiver); changing view ourselves, with our own VIEW-CHANGEs for its view
        (which it may have lost) and for ours (towards its f + 1 rule). At most once per
        timeout per replica: NEW-VIEWs are large."""
        last = self.answered.get(env.signer)
        if env.signer == self.me or (last is not None and now - last < self.config.view_change_timeout):
            return [Drop("stale-view-change", env)]
        answer: list[Effect] = []
        if self.active:
            new_view = self.new_view_envs.get(self.installed_view)
            if new_view is not None:
                if not self._may_serve(env.signer, self.installed_view, now):
                    return [Drop("stale-view-change", env)]  # it was sent this NEW-VIEW within T
                answer.append(Forward(env.signer, new_view))
        else:
            for v in (env.message.view, self.view):
                held = self.view_changes.get(v, {}).get(self.me)
                if held is not None:
                    answer.append(Forward(env.signer, held))
                elif v in self.sent_view_changes:  # (lost with a restart: the same message, signed again)
                    answer.append(Send(env.signer, self.sent_view_changes[v]))
        if not answer:
            return [Drop("stale-view-change", env)]
        self.answered[env.signer] = now
        return answer

    def _resend_view_change(self) -> list[Effect]:
        """Messages may be lost (section 4.5.2 assumes they are retransmitted): while a
        view change is under way, send our VIEW-CHANGE again now and then, so replicas
        that missed it (cut off, restarted) can still reach a quorum."""
        self.resend_timer = False
        if self.active or self.sent_view_change is None or self.sent_view_change.view != self.view:
            return NOTHING
        self.resend_timer = True
        return [Broadcast(self.sent_view_change), StartTimer(RESEND_TIMER, self.config.view_change_timeout)]

    def _compute_o(self, vcs: list[ViewChange]):
        """min-s, and the blocks the new primary must re-issue for (min-s, max-s]."""
        best_vc = max(vcs, key=lambda vc: vc.stable_seq)
        min_s = best_vc.stable_seq
        best: dict[int, PreparedProof] = {}
        for vc in vcs:
            for proof in vc.prepared:
                pp = proof.pre_prepare.message
                if pp.seq > min_s and (pp.seq not in best or pp.view > best[pp.seq].pre_prepare.message.view):
                    best[pp.seq] = proof
        max_s = max(best, default=min_s)
        chosen = []
        for seq in range(min_s + 1, max_s + 1):
            if seq not in best:
                return None  # impossible with at most f faulty replicas (see module docstring)
            chosen.append(best[seq].pre_prepare.message)
        return min_s, best_vc.checkpoint_proof, chosen

    def _maybe_new_view(self, view: int) -> list[Effect]:
        """The primary of ``view`` with a quorum of VIEW-CHANGEs multicasts NEW-VIEW."""
        if (view != self.view or self.active or self.primary_of(view) != self.me
                or view in self.new_views_done):
            return NOTHING
        votes = self.view_changes.get(view, {})
        if len(votes) < self.q or self.me not in votes:
            return NOTHING
        # Built only on VIEW-CHANGEs whose prepared blocks this primary holds: then every
        # block O re-issues is one it holds and serves (docs/messages.md, "Blocks by
        # digest", point 3). Any quorum of valid VIEW-CHANGEs is a safe basis, so one whose
        # sender names a block it withholds (a faulty replica's old certificate) is passed
        # over while its block is fetched; the honest replicas' VIEW-CHANGEs, whose
        # senders hold what they prepared (their Prepared records), make a quorum in time.
        ready = [s for s in sorted(votes) if s != self.me and not self._blocks_missing(votes[s].message)]
        if len(ready) < self.q - 1:
            return self._fetch_for_new_view(view, votes)
        chosen = [votes[self.me]] + [votes[s] for s in ready][: self.q - 1]
        computed = self._compute_o([env.message for env in chosen])
        if computed is None:
            return [Drop("cannot-compute-new-view")]
        _, _, o = computed
        self.new_views_done.add(view)
        # O names each block by digest (docs/messages.md, "Blocks by digest"): a NEW-VIEW
        # of full blocks could exceed what any decoder takes.
        pre_prepares = tuple(PrePrepare(view, pp.seq, pp.digest, None) for pp in o)
        # The caller signs each re-issued pre-prepare, then the NEW-VIEW that holds them.
        # Once built, never another for this view, even after a restart.
        return [Persist(NewViewBuilt(view)), Broadcast(NewView(view, _by_signer(chosen), pre_prepares))]

    def _blocks_missing(self, vc: ViewChange) -> list[tuple[int, str]]:
        """(seq, digest) of each prepared block ``vc`` names that O could re-issue and this
        replica does not hold. Not at or below what it executed: there O re-issues the
        block it executed (a committed block's certificate is in every quorum), which it holds."""
        floor = self.executed if self.executed > self.low else self.low
        missing = []
        for proof in vc.prepared:
            pp = proof.pre_prepare.message
            if pp.seq > floor and self.held_block(pp.seq, pp.digest) is None:
                missing.append((pp.seq, pp.digest))
        return missing

    def _fetch_for_new_view(self, view: int, votes: dict[str, Signed]) -> list[Effect]:
        """Ask for the blocks that keep VIEW-CHANGEs of ``view`` out of this primary's
        NEW-VIEW, each from the VIEW-CHANGEs' senders claiming it first; retried with the
        other holders every BLOCK_TIMER (``_ask_for_blocks``)."""
        others = tuple(votes.values())
        out: list[Effect] = []
        for sender in sorted(votes):
            if sender == self.me:
                continue
            for seq, digest in self._blocks_missing(votes[sender].message):
                known = self.fetching.get(digest)
                if known is not None and known.for_view == view:
                    if sender not in known.holders:
                        # A later VIEW-CHANGE claims it too: its sender prepared it, so
                        # it (and its certificate's signers) join the holders, and it is
                        # asked now (at most n times per block: once per new claimant).
                        known.holders = self._holders(others, seq, digest)
                        out.append(Send(sender, BlockRequest(seq, digest)))
                    continue
                holders = self._holders(others, seq, digest)
                fetch = self.fetching[digest] = BlockFetch(seq, digest, holders, None, 0, view)
                if holders:
                    out.append(Send(holders[0], BlockRequest(seq, digest)))
                    fetch.tries = 1
        if out and not self.block_timer:
            self.block_timer = True
            out.append(StartTimer(BLOCK_TIMER, self.config.view_change_timeout // 4))
        return out

    def _building(self, fetch: BlockFetch) -> bool:
        """Is ``fetch`` for the NEW-VIEW this replica is building now?"""
        return fetch.for_view == self.view and not self.active

    def _on_new_view(self, env: Signed, now: int) -> list[Effect]:
        m: NewView = env.message
        if m.view < self.view or (m.view == self.view and self.active and m.view in self.new_views_done):
            return [Drop("stale-new-view", env)]
        if env.signer != self.primary_of(m.view):
            return [Drop("new-view-not-from-primary", env)]
        senders = set()
        for vc_env in m.view_changes:
            vc = vc_env.message
            if vc.view != m.view or vc_env.signer not in self.members or self._invalid_view_change(vc):
                return [Drop("bad-new-view", env)]
            senders.add(vc_env.signer)
        if len(senders) < self.q or len(senders) != len(m.view_changes):
            return [Drop("bad-new-view", env)]
        computed = self._compute_o([v.message for v in m.view_changes])
        if computed is None:
            return [Drop("bad-new-view", env)]
        min_s, proof, chosen = computed
        if [(p.message.seq, p.message.digest) for p in m.pre_prepares] != [(pp.seq, pp.digest) for pp in chosen]:
            return [Drop("bad-new-view", env)]
        if any(p.signer != env.signer or p.message.view != m.view for p in m.pre_prepares):
            return [Drop("bad-new-view", env)]
        self.new_views_done.add(m.view)
        self.new_view_envs[m.view] = env
        for v in sorted(self.new_view_envs)[:-NEW_VIEWS_KEPT]:
            del self.new_view_envs[v]
        # Written before anything this view makes us send (our PREPAREs for O first).
        effects: list[Effect] = [Persist(ViewInstalled(m.view, env))]
        if proof and type(proof[0].message) is Commit and self.executed < min_s:
            # The stable point is a commit certificate: with the block at hand, that
            # is all a replica needs to execute it (before entering the view, while
            # votes of the old view still count).
            for commit in proof:
                effects.extend(e for e in self._on_commit(commit, now) if type(e) is not Drop)
        # Sequences up to min-s are decided (a stable checkpoint or commit certificate
        # proves them): nobody proposes there in this view; we fetch them if behind.
        self.decided = min_s
        effects.extend(self._enter_view(m.view, max(min_s, max((pp.seq for pp in chosen), default=0))))
        if min_s > self.low:
            if self.executed >= min_s:
                effects.extend(self._stabilise(min_s, proof, now))
            else:
                effects.extend(self._catch_up(min_s, {c.signer: c for c in proof}))
        effects.extend(self._take_up(m.pre_prepares, m.view_changes, now))
        effects.extend(self._replay_future(now))
        effects.extend(self._maybe_propose(now))
        return effects

    # ---- blocks by digest (docs/messages.md, "Blocks by digest") ----------------------

    def _take_up(self, pres: tuple[Signed, ...], view_changes: tuple[Signed, ...], now: int) -> list[Effect]:
        """Accept the NEW-VIEW's re-issued pre-prepares O, each with its block: one this
        replica holds is attached at once; one it executed needs none; any other is
        fetched by digest first. No PREPARE for a block not held: then every honest
        replica that prepares (and so every COMMIT quorum's f + 1 honest members) holds
        the block it voted for, and can serve it."""
        effects: list[Effect] = []
        wanted: dict[str, BlockFetch] = {}
        # Behind min-s, O reaches above our window: those entries wait for state transfer.
        # O lies in (min-s, min-s + L] (checked VIEW-CHANGEs), so at most L of them.
        high = self.high
        self.kept_above = {p.message.seq: p.message.digest for p in pres
                           if high < p.message.seq <= self.decided + self.window}
        # Votes above the window: only those for O's entries kept there stay (an earlier
        # view's kept entries, votes that came before this NEW-VIEW for anything else go).
        for seq in [s for s in self.log if s > high]:
            digest = self.kept_above.get(seq)
            if digest is None:
                del self.log[seq]
                continue
            slot, key = self.log[seq], (self.view, digest)
            slot.prepares = {k: v for k, v in slot.prepares.items() if k == key}
            slot.commits = {k: v for k, v in slot.commits.items() if k == key}
        for pre in pres:
            m = pre.message
            if m.seq <= self.low:
                continue
            block = m.block or self.held_block(m.seq, m.digest)
            if block is None and m.seq > self.executed:
                known = self.fetching.get(m.digest)
                holders = self._holders(view_changes, m.seq, m.digest)
                wanted[m.digest] = BlockFetch(m.seq, m.digest, holders, pre, known.tries if known else 0)
                continue
            effects.extend(self._on_pre_prepare(pre if block is None else with_block(pre, block), now,
                                                reissued=True))
        self.fetching = wanted  # the blocks of earlier views' O are not needed: this O decides
        self.new_view_blocks = {}  # taken up above (a primary holds every block its O names)
        if wanted:
            effects.extend(self._ask_for_blocks())
        return effects

    def _holders(self, view_changes: tuple[Signed, ...], seq: int, digest: str) -> tuple[str, ...]:
        """Who to ask for the block ``digest`` at ``seq``: the senders of the VIEW-CHANGEs
        claiming a prepared certificate for it, then the other signers of those certificates."""
        claimed, signed = set(), set()
        for vc in view_changes:
            for proof in vc.message.prepared:
                pp = proof.pre_prepare.message
                if pp.seq == seq and pp.digest == digest:
                    claimed.add(vc.signer)
                    signed.add(proof.pre_prepare.signer)
                    signed.update(p.signer for p in proof.prepares)
        claimed.discard(self.me)
        signed -= claimed | {self.me}
        return tuple(sorted(claimed)) + tuple(sorted(signed))

    def _ask_for_blocks(self) -> list[Effect]:
        """Ask the next holder of each block still missing; again after BLOCK_TIMER."""
        out: list[Effect] = []
        for fetch in sorted(self.fetching.values(), key=lambda f: f.seq):
            if (fetch.pre is None and not self._building(fetch)) or not fetch.holders:
                continue
            out.append(Send(fetch.holders[fetch.tries % len(fetch.holders)], BlockRequest(fetch.seq, fetch.digest)))
            fetch.tries += 1
        if out and not self.block_timer:
            self.block_timer = True
            out.append(StartTimer(BLOCK_TIMER, self.config.view_change_timeout // 4))
        return out

    def held_block(self, seq: int, digest: str) -> Block | None:
        """The block ``digest`` proposed at ``seq``, if this replica holds it: in its log
        (accepted, prepared, executed above its stable checkpoint, or seen in another
        view) or waiting for the block below."""
        block = self.new_view_blocks.get(digest)
        if block is not None and block.height == seq:
            return block
        slot = self.log.get(seq)
        if slot is not None:
            if slot.digest == digest and slot.block is not None:
                return slot.block
            block = slot.seen_blocks.get(digest)
            if block is not None:
                return block
            proof = slot.proof
            if proof is not None and proof.pre_prepare.message.digest == digest and proof.pre_prepare.message.block:
                return proof.pre_prepare.message.block
        held = self.deferred.get(seq)
        if held is not None and held[0].message.digest == digest:
            return held[0].message.block
        return None

    def wants_block(self, digest: str) -> bool:
        """Is this replica fetching the block ``digest``? A BLOCK-REPLY for any other is
        refused (``unrequested-block``): the caller need not check its block's requests
        first (one signature each) for an answer nobody asked for."""
        return digest in self.fetching

    def _on_block_request(self, env: Signed, now: int) -> list[Effect]:
        """Serve a block a peer must fetch: at most once per (replica, block) per
        BLOCK_TIMER period (the asker's retry period), as a block may be 16 MiB."""
        m: BlockRequest = env.message
        block = self.held_block(m.seq, m.digest) if env.signer != self.me else None
        if block is None:
            return [Drop("no-block-to-serve", env)]
        key = (env.signer, m.digest)
        last = self.blocks_served.get(key)
        if last is not None and now - last < self.config.view_change_timeout // 4:
            return [Drop("block-already-served", env)]
        if last is None and len(self.blocks_served) >= self.n * self.window:
            self.blocks_served.clear()  # bounded: forgetting only lets an asker be served again
        self.blocks_served[key] = now
        return [Send(env.signer, BlockReply(m.digest, block))]

    def _on_block_reply(self, env: Signed, now: int) -> list[Effect]:
        """A fetched block. It hashes to the digest it is sent for (checked on
        construction), and the caller checked it is bound to its header (tx_root) and
        its requests are signed, so a block for a digest we wait for is the one O names."""
        m: BlockReply = env.message
        fetch = self.fetching.get(m.digest)
        if fetch is None or m.block.height != fetch.seq:
            return [Drop("unrequested-block", env)]
        del self.fetching[m.digest]
        if self._building(fetch):  # a block a VIEW-CHANGE names, for the NEW-VIEW we build
            self.new_view_blocks[m.digest] = m.block
            effects = self._maybe_new_view(self.view)
            if not self.fetching and self.block_timer:
                self.block_timer = False
                effects = effects + [CancelTimer(BLOCK_TIMER)]
            return effects
        if self.executed < fetch.seq <= self.high:
            self._slot(fetch.seq).seen_blocks.setdefault(m.digest, m.block)
        if fetch.pre is None or not self.active or fetch.pre.message.view != self.view:
            return NOTHING  # a further view change since: kept for that view's O
        effects = self._on_pre_prepare(with_block(fetch.pre, m.block), now, reissued=True)
        if not self.fetching and self.block_timer:
            self.block_timer = False
            effects = effects + [CancelTimer(BLOCK_TIMER)]
        return effects

    def _witness(self, view: int, signer: str, now: int) -> list[Effect]:
        """Count replicas working in a view above ours. f + 1 of them include an honest
        one, which holds the NEW-VIEW that installed the view: ask them for it. The
        view is entered only through that NEW-VIEW (``_on_new_view``), never on the
        evidence alone, or the replica would skip the view's O set."""
        if view < self.view or (view == self.view and self.active):
            return NOTHING
        seen = self.evidence.setdefault(view, set())
        seen.add(signer)
        if len(seen) < self.weak:
            return NOTHING
        asked = self.asked.setdefault(view, set())
        fresh = sorted(seen - asked)
        asked.update(fresh)
        return [Send(peer, NewViewRequest(view)) for peer in fresh]

    def _note_far_working(self, view: int, signer: str) -> list[Effect]:
        """Votes and proposals more than MAX_FUTURE_VIEWS ahead are not kept, but who
        sent them is (the newest view per replica): f + 1 replicas working that far ahead
        include an honest one, so ask each for the NEW-VIEW of the view it works in. (A
        replica far behind and with nothing to time out on would otherwise never learn
        the group's view.)"""
        if view <= self.view + MAX_FUTURE_VIEWS or self.far_working.get(signer, -1) >= view:
            return NOTHING
        self.far_working[signer] = view
        if len(self.far_working) < self.weak:
            return NOTHING
        out: list[Effect] = []
        for peer, v in sorted(self.far_working.items()):
            asked = self.asked.setdefault(v, set())
            if peer not in asked:
                asked.add(peer)
                out.append(Send(peer, NewViewRequest(v)))
        return out

    def _on_new_view_request(self, env: Signed, now: int) -> list[Effect]:
        """Send a replica the NEW-VIEW it missed: at most once per T per (replica, view).
        A NEW-VIEW is large (a quorum of VIEW-CHANGEs); a replayed or repeated request
        must not make this replica send it again and again (an honest asker asks each
        peer once per view)."""
        view = env.message.view
        new_view = self.new_view_envs.get(view)
        if new_view is None or env.signer == self.me:
            return [Drop("no-new-view-to-serve", env)]
        if not self._may_serve(env.signer, view, now):
            return [Drop("new-view-already-served", env)]
        return [Forward(env.signer, new_view)]

    def _may_serve(self, replica: str, view: int, now: int) -> bool:
        """May we send ``replica`` the NEW-VIEW of ``view`` now? At most once per T per
        (replica, view), whichever path asks (a stale VIEW-CHANGE, a NEW-VIEW request)."""
        key = (replica, view)
        last = self.served.get(key)
        if last is not None and now - last < self.config.view_change_timeout:
            return False
        if last is None and len(self.served) >= self.n * NEW_VIEWS_KEPT:
            # Bounded: only views still held can be served, so forget the others.
            self.served = {k: t for k, t in self.served.items() if k[1] in self.new_view_envs}
        self.served[key] = now
        return True

    def _on_restarted(self, now: int) -> list[Effect]:
        """A restarted process has no timers, and what it sent last may not have left:
        re-arm, and repeat what peers may be waiting for (the same messages again)."""
        effects: list[Effect] = []
        if not self.active:
            vc = self.sent_view_change
            if vc is None or vc.view != self.view:
                self.view -= 1  # defensive: no record of it, so start that view change again
                return self._start_view_change(self.view + 1)
            effects.append(Broadcast(vc))  # its own copy counts again towards the timer's quorum
            self.resend_timer = True
            effects.append(StartTimer(RESEND_TIMER, self.config.view_change_timeout))
            return effects
        if self.me != self.primary:
            for seq, slot in sorted(self.log.items()):
                if slot.pre_prepare is not None and slot.view == self.view and seq > self.executed:
                    effects.append(Broadcast(Prepare(slot.view, seq, slot.digest)))
                    if slot.prepared:
                        effects.append(Broadcast(Commit(slot.view, seq, slot.digest)))
        if self.executed < self.decided:
            # Behind the installed NEW-VIEW's min-s (the CatchUp it asked for died with the
            # process): fetch up to it again, or O's entries kept above the window wait forever.
            nv = self.new_view_envs[self.installed_view].message
            proof = max((vc.message for vc in nv.view_changes), key=lambda vc: vc.stable_seq).checkpoint_proof
            effects.extend(self._catch_up(self.decided, {c.signer: c for c in proof}))
        # O again: accepted now, held back until the block below, or fetched by digest first.
        effects.extend(e for e in self._take_up(self.reissue, self.reissue_proof, now) if type(e) is not Drop)
        self.reissue, self.reissue_proof = (), ()
        if self.me == self.primary:
            peers = [p for p in self.config.replicas if p != self.me]
            for seq in range(self.executed + 1, self.last_proposed + 1):
                slot = self.log.get(seq)
                held = self.deferred.get(seq)
                if slot is not None and slot.pre_prepare is not None:
                    effects.extend(Forward(p, slot.pre_prepare) for p in peers)
                elif held is not None:
                    effects.extend(Forward(p, held[0]) for p in peers)
                elif seq in self.reproposals:
                    effects.append(Broadcast(self.reproposals[seq]))  # signed again: the same bytes
        self.reproposals.clear()
        effects.extend(self._request_timer(restart=True))
        if any(not slot.committed and slot.pre_prepare is not None for slot in self.log.values()):
            effects.extend(self._arm_fetch())
        return effects

    def _enter_view(self, view: int, settled: int) -> list[Effect]:
        """Work in ``view``, whose NEW-VIEW settles every sequence up to ``settled``."""
        effects: list[Effect] = []
        if self.vc_timer:
            self.vc_timer = False
            effects.append(CancelTimer(VIEW_TIMER))
        if self.resend_timer:
            self.resend_timer = False
            effects.append(CancelTimer(RESEND_TIMER))
        self.view = view
        self.active = True
        self.installed_view = view
        self.sent_view_change = None
        self.sent_view_changes.clear()
        self.last_proposed = max(self.executed, settled)
        self._forget_views_below(view + 1)
        for v in [v for v in self.view_changes if v < view]:
            del self.view_changes[v]
        self.deferred = {s: d for s, d in self.deferred.items() if d[0].message.view >= view}
        # Requests of blocks that will not be re-proposed go back to waiting.
        for slot in self.log.values():
            if (slot.seq > max(self.executed, settled) and slot.block is not None and not slot.committed
                    and slot.view < view):
                for r in slot.block.requests:
                    if r.digest in self.accepted:
                        del self.accepted[r.digest]
                        self.pending[r.digest] = r
                        self.pending_of[r.signer] = self.pending_of.get(r.signer, 0) + 1
                slot.pre_prepare, slot.digest, slot.block, slot.prepared = None, None, None, False
        self.batch_due = bool(self.pending)
        if self.me != self.primary:
            # Requests relayed to the old primary may have died with it: hand on the
            # oldest two blocks' worth (clients resend the rest), not a flood.
            effects.extend(Forward(self.primary, env)
                           for env in islice(self.pending.values(), 2 * self.config.block_size))
        effects.extend(self._request_timer(restart=True))
        return effects

    def _replay_future(self, now: int) -> list[Effect]:
        effects: list[Effect] = []
        for key in sorted(k for k in self.future if k[0] <= self.view):
            env = self.future.pop(key)
            if key[0] == self.view:
                # Held since it arrived, perhaps for long: judge its date again now, as for
                # a pre-prepare delayed on the way (a later view's primary must not send
                # today the block it wants taken in an hour).
                late = self._clock_refusal(env.message.block.header.timestamp, now)
                if late is not None:
                    effects.append(Drop(late, env))
                    continue
                effects.extend(self._on_pre_prepare(env, now))
        return effects
