"""Protocol messages, in the paper's terms; the signed envelope that carries them
(``Signed``, defined in ``consensus.envelope``) is re-exported here.

Each message knows its *body*: the dict that, with the chain id and the signer
added, is canonically encoded and signed (see docs/messages.md). Messages are
validated at construction, so a malformed one never reaches the replica.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Union
from weakref import WeakKeyDictionary

from .block import Block
from .encoding import canonical, check_canonical_value
from .envelope import Signed, bare_wire_size

_HEX = frozenset("0123456789abcdef")


def _check_int(name: str, value, minimum: int = 0) -> None:
    if type(value) is not int or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_digest(name: str, value) -> None:
    if not isinstance(value, str) or len(value) != 64 or not _HEX.issuperset(value):
        raise ValueError(f"{name} must be 64 lower-case hex characters, got {value!r}")


def _check_name(name: str, value) -> None:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValueError(f"{name} must be a non-empty string of at most 64 characters, got {value!r}")


@dataclass(frozen=True, slots=True)
class Request:
    """<REQUEST, o, t, c>: a client transaction, signed by the client."""

    KIND: ClassVar[str] = "request"
    nonce: int  # the client's own counter: two requests never share (client, nonce)
    app: str
    op: str
    args: dict
    ts: int  # client's timestamp, nanoseconds

    def __post_init__(self):
        _check_int("nonce", self.nonce)
        _check_name("app", self.app)
        _check_name("op", self.op)
        if not isinstance(self.args, dict):
            raise ValueError(f"args must be an object, got {type(self.args).__name__}")
        check_canonical_value(self.args, "args")
        _check_int("ts", self.ts)

    def body(self) -> dict:
        return {"type": self.KIND, "nonce": self.nonce, "app": self.app, "op": self.op,
                "args": self.args, "ts": self.ts}


@dataclass(frozen=True, slots=True)
class PrePrepare:
    """<<PRE-PREPARE, v, n, d>_p, m>: the primary assigns sequence n to block m.

    Only (v, n, d) is signed; the block rides alongside and must hash to d. Inside a
    VIEW-CHANGE or NEW-VIEW a pre-prepare names its block by d only (``block`` None):
    see ``digest_only``.
    """

    KIND: ClassVar[str] = "pre-prepare"
    view: int
    seq: int
    digest: str
    block: Block | None

    def __post_init__(self):
        _check_int("view", self.view)
        _check_int("seq", self.seq, 1)
        _check_digest("digest", self.digest)
        if self.block is not None and self.block.hash != self.digest:
            raise ValueError("pre-prepare digest does not match its block's hash")

    def body(self) -> dict:
        return {"type": self.KIND, "view": self.view, "seq": self.seq, "digest": self.digest}


def digest_only(pre):
    """A pre-prepare (signed or not) without its block. The signature covers (v, n, d)
    only, so the envelope keeps its signed bytes and signature: it is the same message,
    naming its block by digest (docs/messages.md, "Blocks by digest")."""
    if isinstance(pre, PrePrepare):
        return pre if pre.block is None else replace(pre, block=None)
    if pre.message.block is None:
        return pre
    bare = _DIGEST_ONLY.get(pre)
    if bare is None:
        bare = _DIGEST_ONLY[pre] = Signed(replace(pre.message, block=None), pre.signer, pre.signature, pre.data,
                                          pre.digest, bare_wire_size(pre.data, pre.signature))
    return bare


# One digest-only form per envelope object: the simulator shares one envelope among all
# replicas, and K VIEW-CHANGEs naming one pre-prepare must embed one object, which a node
# checks once (node/node.py, ``_embedded_once``). Weak: it lives as long as the envelope.
_DIGEST_ONLY: WeakKeyDictionary = WeakKeyDictionary()


def with_block(pre: Signed, block: Block) -> Signed:
    """A signed digest-only pre-prepare with the block it names attached again (the
    caller holds that block: it hashes to the signed digest, or this raises)."""
    m = pre.message
    size = bare_wire_size(pre.data, pre.signature) + len(b',"block":') + len(canonical(block.to_dict()))
    return Signed(PrePrepare(m.view, m.seq, m.digest, block), pre.signer, pre.signature, pre.data, pre.digest, size)


@dataclass(frozen=True, slots=True)
class _Vote:
    view: int
    seq: int
    digest: str

    def __post_init__(self):
        _check_int("view", self.view)
        _check_int("seq", self.seq, 1)
        _check_digest("digest", self.digest)

    def body(self) -> dict:
        return {"type": self.KIND, "view": self.view, "seq": self.seq, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class Prepare(_Vote):
    """<PREPARE, v, n, d, i>: backup i accepted the pre-prepare for (v, n, d)."""

    KIND: ClassVar[str] = "prepare"


@dataclass(frozen=True, slots=True)
class Commit(_Vote):
    """<COMMIT, v, n, d, i>: replica i has prepared (v, n, d). d is the block hash."""

    KIND: ClassVar[str] = "commit"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """<CHECKPOINT, n, d, i>: replica i executed up to n; d is (block hash, state root)."""

    KIND: ClassVar[str] = "checkpoint"
    seq: int
    block_hash: str
    state_root: str

    def __post_init__(self):
        _check_int("seq", self.seq, 1)
        _check_digest("block_hash", self.block_hash)
        _check_digest("state_root", self.state_root)

    def body(self) -> dict:
        return {"type": self.KIND, "seq": self.seq, "block_hash": self.block_hash,
                "state_root": self.state_root}




@dataclass(frozen=True, slots=True)
class NewViewRequest:
    """Ask a replica seen working in ``view`` for the NEW-VIEW that installed it.

    A replica that missed a NEW-VIEW (cut off, restarted) learns of the view from
    f + 1 replicas working in it, and may enter it only through its NEW-VIEW."""

    KIND: ClassVar[str] = "new-view-request"
    view: int

    def __post_init__(self):
        _check_int("view", self.view, 1)

    def body(self) -> dict:
        return {"type": self.KIND, "view": self.view}


def _check_envelopes(name: str, items, kind) -> None:
    if not isinstance(items, tuple):
        raise ValueError(f"{name} must be a tuple")
    for env in items:
        if not isinstance(env, Signed) or not isinstance(env.message, kind):
            raise ValueError(f"{name} must hold signed {kind.KIND} messages")


@dataclass(frozen=True, slots=True)
class PreparedProof:
    """P_m of section 4.4: a pre-prepare and a quorum of matching prepares."""

    pre_prepare: Signed
    prepares: tuple[Signed, ...]

    def __post_init__(self):
        _check_envelopes("pre_prepare", (self.pre_prepare,), PrePrepare)
        _check_envelopes("prepares", self.prepares, Prepare)

    def body(self) -> dict:
        return {"pre_prepare": self.pre_prepare.digest, "prepares": [p.digest for p in self.prepares]}


@dataclass(frozen=True, slots=True)
class ViewChange:
    """<VIEW-CHANGE, v+1, n, C, P, i>: replica i moves to view v+1.

    n is its last stable checkpoint, C the checkpoint messages proving it (or the
    commit certificate of block n), P a prepared proof for every sequence above n it
    prepared (in the highest view).
    """

    KIND: ClassVar[str] = "view-change"
    view: int
    stable_seq: int
    checkpoint_proof: tuple[Signed, ...]
    prepared: tuple[PreparedProof, ...]

    def __post_init__(self):
        _check_int("view", self.view, 1)
        _check_int("stable_seq", self.stable_seq)
        if not all(isinstance(c, Signed) and type(c.message) in (Checkpoint, Commit) for c in self.checkpoint_proof):
            raise ValueError("checkpoint_proof must hold signed checkpoints or commits")
        if not isinstance(self.prepared, tuple) or not all(isinstance(p, PreparedProof) for p in self.prepared):
            raise ValueError("prepared must be a tuple of prepared proofs")
        # Blocks by digest: a VIEW-CHANGE never carries a block (docs/messages.md).
        if any(p.pre_prepare.message.block is not None for p in self.prepared):
            object.__setattr__(self, "prepared", tuple(
                PreparedProof(digest_only(p.pre_prepare), p.prepares) for p in self.prepared))

    def body(self) -> dict:
        # Embedded envelopes are signed by reference (the SHA-256 of their signed
        # bytes) and travel once each beside the message (docs/messages.md).
        return {"type": self.KIND, "view": self.view, "stable_seq": self.stable_seq,
                "checkpoint_proof": [c.digest for c in self.checkpoint_proof],
                "prepared": [p.body() for p in self.prepared]}


@dataclass(frozen=True, slots=True)
class NewView:
    """<NEW-VIEW, v+1, V, O>: the new primary's proof (V, a quorum of VIEW-CHANGEs)
    and the pre-prepares O it re-issues for the sequences those prepared."""

    KIND: ClassVar[str] = "new-view"
    view: int
    view_changes: tuple[Signed, ...]
    pre_prepares: tuple[Signed, ...]

    def __post_init__(self):
        _check_int("view", self.view, 1)
        _check_envelopes("view_changes", self.view_changes, ViewChange)
        # The replica builds O unsigned; the caller signs each before signing the NEW-VIEW.
        if not isinstance(self.pre_prepares, tuple) or not all(
                isinstance(p, PrePrepare) or isinstance(p, Signed) and isinstance(p.message, PrePrepare)
                for p in self.pre_prepares):
            raise ValueError("pre_prepares must hold pre-prepares")
        # Blocks by digest: a NEW-VIEW never carries a block (docs/messages.md).
        if any((p if isinstance(p, PrePrepare) else p.message).block is not None for p in self.pre_prepares):
            object.__setattr__(self, "pre_prepares", tuple(digest_only(p) for p in self.pre_prepares))

    @property
    def signed(self) -> bool:
        return all(isinstance(p, Signed) for p in self.pre_prepares)

    def body(self) -> dict:
        if not self.signed:
            raise ValueError("a NEW-VIEW's pre-prepares must be signed before it is")
        return {"type": self.KIND, "view": self.view,
                "view_changes": [v.digest for v in self.view_changes],
                "pre_prepares": [p.digest for p in self.pre_prepares]}


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """Ask a replica for the block with hash ``digest`` that a NEW-VIEW re-issues at ``seq``
    (the NEW-VIEW names it by digest; this replica does not hold it)."""

    KIND: ClassVar[str] = "block-request"
    seq: int
    digest: str

    def __post_init__(self):
        _check_int("seq", self.seq, 1)
        _check_digest("digest", self.digest)

    def body(self) -> dict:
        return {"type": self.KIND, "seq": self.seq, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class BlockReply:
    """The answer to a BLOCK-REQUEST: the block, which proves itself by hash (only its
    digest is signed; the block rides alongside, as with a PRE-PREPARE)."""

    KIND: ClassVar[str] = "block-reply"
    digest: str
    block: Block

    def __post_init__(self):
        _check_digest("digest", self.digest)
        if not isinstance(self.block, Block) or self.block.hash != self.digest:
            raise ValueError("block-reply digest does not match its block's hash")

    def body(self) -> dict:
        return {"type": self.KIND, "digest": self.digest}


Message = Union[Request, PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView, NewViewRequest,
                BlockRequest, BlockReply]


def embedded(message) -> tuple[Signed, ...]:
    """Signed envelopes carried inside a message, each to be authenticated on its own."""
    kind = type(message)
    if kind is PrePrepare or kind is BlockReply:
        return message.block.requests if message.block is not None else ()
    if kind is ViewChange:
        out = list(message.checkpoint_proof)
        for proof in message.prepared:
            out.append(proof.pre_prepare)
            out.extend(proof.prepares)
        return tuple(out)
    if kind is NewView:
        out = []
        for vc in message.view_changes:
            out.append(vc)
            out.extend(embedded(vc.message))
        out.extend(message.pre_prepares)
        return tuple(out)
    return ()
