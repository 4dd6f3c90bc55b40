"""Signing messages into envelopes with a member's Ed25519 key."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consensus.encoding import sha256_hex
from consensus.messages import NewView, Signed

from .codec import signed_bytes, wire_size


class Signer:
    def __init__(self, member_id: str, key: Ed25519PrivateKey, chain_id: str):
        self.id = member_id
        self._key = key
        self.chain_id = chain_id

    def sign(self, message) -> Signed:
        if type(message) is NewView and not message.signed:
            # The replica leaves the re-issued pre-prepares (O) for its signer to sign.
            message = NewView(message.view, message.view_changes, tuple(self.sign(p) for p in message.pre_prepares))
        data = signed_bytes(message, self.chain_id, self.id)
        signature = self._key.sign(data)
        return Signed(message, self.id, signature, data, sha256_hex(data), wire_size(data, signature, message))
