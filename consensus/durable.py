"""The durable protocol state: what a replica writes down before the messages that depend
on it leave, so that after a restart it is an honest replica again.

PBFT (Castro & Liskov, OSDI'99) assumes a replica keeps its protocol state; one that
forgets what it pre-prepared, prepared or installed can vote twice or drop a
request that committed elsewhere (the amnesia of the Twins paper). The replica
emits ``Persist(record)`` effects, in the list *before* the sends that depend on
them; the caller applies each record to its store before performing the next
effect (in memory in the simulator, in SQLite with fsync for a process). On
restart the store's ``DurableState`` goes back into ``Replica.restore``.

What is kept, and why (docs/durable-state.md gives the full argument):

- the view, whether the replica is changing view, and the VIEW-CHANGEs it sent since
  it last installed a view (section 4.4: a replica never goes back to a lower view,
  and its VIEW-CHANGE must not be replaced by one that forgets what it prepared;
  replicas left behind in an earlier view of the same view change may need them);
- every PRE-PREPARE it sent or accepted above its stable checkpoint, highest view
  per sequence (section 4.2: a replica accepts at most one pre-prepare per view
  and sequence, and the primary proposes at most one; the PREPARE it sends
  depends on it);
- every prepared certificate above its stable checkpoint, highest view per
  sequence (section 4.4: the P set of its VIEW-CHANGE; the COMMIT it sends
  depends on it; losing it lets a new view re-order a committed block);
- the NEW-VIEW of the view it installed (section 4.4: O decides what the view
  re-issues; a replica serves it to peers that missed it) and the highest view
  for which it built a NEW-VIEW as primary (never two different ones);
- the stable checkpoint and its proof (section 4.3: everything at or below it is
  discarded).

The committed blocks themselves live in the ledger, which is durable too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from .messages import PrePrepare, PreparedProof, Signed, ViewChange

MAX_VIEW_CHANGES_KEPT = 16  # the VIEW-CHANGEs of the current view change, to answer replicas behind


@dataclass(frozen=True, slots=True)
class ViewChangeSent:
    """The replica moved to ``view_change.view`` and is not yet working in it."""

    view_change: ViewChange


@dataclass(frozen=True, slots=True)
class NewViewBuilt:
    """As primary of ``view`` it built (and is about to send) that view's NEW-VIEW."""

    view: int


@dataclass(frozen=True, slots=True)
class ViewInstalled:
    """The replica works in ``view`` from now on; ``new_view`` installed it (None for view 0)."""

    view: int
    new_view: Signed | None


@dataclass(frozen=True, slots=True)
class Proposed:
    """As primary it proposes this pre-prepare (written before it is signed and sent)."""

    pre_prepare: PrePrepare


@dataclass(frozen=True, slots=True)
class Accepted:
    """It accepted this signed pre-prepare (its PREPARE, if a backup, follows)."""

    pre_prepare: Signed


@dataclass(frozen=True, slots=True)
class Prepared:
    """It holds this prepared certificate (its COMMIT follows)."""

    proof: PreparedProof


@dataclass(frozen=True, slots=True)
class Stabilised:
    """Sequence ``seq`` is stable (``proof``: checkpoints or a commit certificate)."""

    seq: int
    proof: tuple[Signed, ...]


Record = Union[ViewChangeSent, NewViewBuilt, ViewInstalled, Proposed, Accepted, Prepared, Stabilised]


@dataclass
class DurableState:
    """The records applied in order: what a restarted replica reads back."""

    view: int = 0
    active: bool = True
    installed_view: int = 0
    view_change: ViewChange | None = None  # the VIEW-CHANGE sent for ``view`` while not active
    view_changes_sent: dict[int, ViewChange] = field(default_factory=dict)  # since the last view installed
    new_view: Signed | None = None  # the NEW-VIEW of ``installed_view``
    built_new_view: int = 0  # highest view it built a NEW-VIEW for, as primary
    stable_seq: int = 0
    stable_proof: tuple[Signed, ...] = ()
    proposed: dict[int, PrePrepare] = field(default_factory=dict)  # seq -> highest-view proposal
    accepted: dict[int, Signed] = field(default_factory=dict)  # seq -> highest-view accepted pre-prepare
    prepared: dict[int, PreparedProof] = field(default_factory=dict)  # seq -> highest-view certificate

    def apply(self, record: Record) -> None:
        kind = type(record)
        if kind is Accepted:
            m = record.pre_prepare.message
            known = self.accepted.get(m.seq)
            if m.seq > self.stable_seq and (known is None or known.message.view <= m.view):
                self.accepted[m.seq] = record.pre_prepare
        elif kind is Prepared:
            pp = record.proof.pre_prepare.message
            known = self.prepared.get(pp.seq)
            if pp.seq > self.stable_seq and (known is None or known.pre_prepare.message.view <= pp.view):
                self.prepared[pp.seq] = record.proof
        elif kind is Proposed:
            m = record.pre_prepare
            known = self.proposed.get(m.seq)
            if m.seq > self.stable_seq and (known is None or known.view <= m.view):
                self.proposed[m.seq] = m
        elif kind is ViewChangeSent:
            vc = record.view_change
            if vc.view > self.view or (vc.view == self.view and not self.active):
                self.view, self.active, self.view_change = vc.view, False, vc
                self.view_changes_sent[vc.view] = vc
                for v in sorted(self.view_changes_sent)[:-MAX_VIEW_CHANGES_KEPT]:
                    del self.view_changes_sent[v]
        elif kind is ViewInstalled:
            if record.view >= self.view:
                self.view = self.installed_view = record.view
                self.active, self.view_change, self.new_view = True, None, record.new_view
                self.view_changes_sent = {}
        elif kind is NewViewBuilt:
            self.built_new_view = max(self.built_new_view, record.view)
        elif kind is Stabilised:
            if record.seq > self.stable_seq:
                self.stable_seq, self.stable_proof = record.seq, record.proof
                for table in (self.proposed, self.accepted, self.prepared):
                    for seq in [s for s in table if s <= record.seq]:
                        del table[seq]
        else:
            raise TypeError(f"unknown durable record {record!r}")

    def fingerprint(self) -> tuple:
        """A comparable summary (tests use it to tell states apart)."""
        return (self.view, self.active, self.installed_view, self.built_new_view, self.stable_seq,
                sorted((s, e.message.view, e.message.digest) for s, e in self.accepted.items()),
                sorted((s, p.pre_prepare.message.view, p.pre_prepare.message.digest) for s, p in self.prepared.items()),
                sorted((s, m.view, m.digest) for s, m in self.proposed.items()))
