"""The signed envelope: a message with its signer's Ed25519 signature.

It sits below both blocks (which hold signed client requests) and messages (a
PRE-PREPARE carries a block, a VIEW-CHANGE carries envelopes), so neither of
those modules needs the other to name it. ``consensus.messages`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class Signed:
    """A message with its signer's Ed25519 signature over ``data``.

    ``data`` is the exact signed byte string; ``digest`` its SHA-256 (a request's
    transaction id); ``size`` the bytes this envelope occupies on the wire.
    Envelopes are immutable and shared: one object may be delivered to every
    simulated receiver.
    """

    message: Any  # one of consensus.messages.Message
    signer: str
    signature: bytes
    data: bytes
    digest: str
    size: int

    def __deepcopy__(self, memo) -> "Signed":
        return self  # immutable: copies of a world share their envelopes

    def to_dict(self) -> dict:
        """The envelope as the wire and the ledger carry it (docs/messages.md)."""
        return {"data": self.data.decode("ascii"), "sig": self.signature.hex()}


_BARE = len(b'{"data":"","sig":""}')


def bare_wire_size(data: bytes, signature: bytes) -> int:
    """The wire size of ``{"data": <data>, "sig": <hex>}`` with nothing attached: counted,
    not encoded (canonical data is ASCII with no control characters; only its quotes and
    backslashes are escaped again)."""
    return _BARE + len(data) + data.count(b'"') + data.count(b"\\") + 2 * len(signature)
