"""Protocol messages, in the paper's terms, and the signed envelope that carries them.

Each message knows its *body*: the dict that, with the chain id and the signer
added, is canonically encoded and signed (see docs/messages.md). Messages are
validated at construction, so a malformed one never reaches the replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Union

from .encoding import check_canonical_value

if TYPE_CHECKING:
    from .block import Block

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

    Only (v, n, d) is signed; the block rides alongside and must hash to d.
    """

    KIND: ClassVar[str] = "pre-prepare"
    view: int
    seq: int
    digest: str
    block: "Block"

    def __post_init__(self):
        _check_int("view", self.view)
        _check_int("seq", self.seq, 1)
        _check_digest("digest", self.digest)
        if self.block.hash != self.digest:
            raise ValueError("pre-prepare digest does not match its block's hash")

    def body(self) -> dict:
        return {"type": self.KIND, "view": self.view, "seq": self.seq, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class Prepare:
    """<PREPARE, v, n, d, i>: backup i accepted the pre-prepare for (v, n, d)."""

    KIND: ClassVar[str] = "prepare"
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
class Commit:
    """<COMMIT, v, n, d, i>: replica i has prepared (v, n, d). d is the block hash."""

    KIND: ClassVar[str] = "commit"
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


Message = Union[Request, PrePrepare, Prepare, Commit, Checkpoint]
CONSENSUS_KINDS = (PrePrepare, Prepare, Commit, Checkpoint)


@dataclass(frozen=True, slots=True, eq=False)
class Signed:
    """A message with its signer's Ed25519 signature over ``data``.

    ``data`` is the exact signed byte string; ``digest`` its SHA-256 (a request's
    transaction id); ``size`` the bytes this envelope occupies on the wire.
    Envelopes are immutable and shared: one object may be delivered to every
    simulated receiver.
    """

    message: Message
    signer: str
    signature: bytes
    data: bytes
    digest: str
    size: int
