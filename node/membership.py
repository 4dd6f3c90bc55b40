"""Who may say what: authenticating envelopes against the genesis membership.

A message is accepted only from a member whose CA-issued certificate is in the
genesis, in a role allowed to send that kind of message, with a valid Ed25519
signature over exactly the bytes the message encodes.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consensus.messages import (Checkpoint, Commit, NewView, NewViewRequest, PrePrepare, Prepare, Request, Signed,
                                ViewChange)

from .codec import signed_bytes
from .sync_messages import Blocks, Fetch

ALLOWED_ROLES = {
    Request: frozenset({"client"}),
    PrePrepare: frozenset({"consensus"}),
    Prepare: frozenset({"consensus"}),
    Commit: frozenset({"consensus"}),
    Checkpoint: frozenset({"consensus"}),
    ViewChange: frozenset({"consensus"}),
    NewView: frozenset({"consensus"}),
    NewViewRequest: frozenset({"consensus"}),
    Fetch: frozenset({"consensus", "observer"}),
    Blocks: frozenset({"consensus"}),
}


class Membership:
    """The genesis member table plus a cache of signature checks.

    The cache maps an envelope object to its verdict. In the simulator one envelope
    object reaches every receiver, so each (key, bytes, signature) is verified once;
    each node is still charged its modelled CPU time per verification.
    """

    def __init__(self, chain_id: str, members: dict[str, tuple[Ed25519PublicKey, str, str]],
                 cache_limit: int | None = None):
        self.chain_id = chain_id
        self.members = members  # id -> (public key, org, role)
        self._verdicts: dict[Signed, str | None] = {}
        self._blocks: dict = {}  # block -> (verdict on all its requests, frozenset of their signatures)
        self.verifications = 0  # real Ed25519 verifications performed
        # A node process decodes a fresh envelope object for every copy it receives, and
        # the same PREPARE arrives again inside VIEW-CHANGEs and NEW-VIEWs: there the
        # signatures already checked are remembered by content, and every cache is
        # bounded (cleared when full), since the process runs for months. The simulator
        # shares one object per envelope and keeps the identity cache only.
        self.cache_limit = cache_limit
        self._good: set[tuple[str, bytes, bytes]] | None = set() if cache_limit else None

    def role_of(self, member_id: str) -> str | None:
        entry = self.members.get(member_id)
        return entry[2] if entry else None

    def authenticated(self) -> list[Signed]:
        """Every distinct envelope checked so far (whatever the verdict)."""
        return list(self._verdicts)

    def authenticate(self, env: Signed) -> str | None:
        """None if the envelope may be acted on, else the reason to drop it."""
        verdict = self._verdicts.get(env, 0)
        if verdict != 0:
            return verdict
        verdict = self._check(env)
        if self.cache_limit and len(self._verdicts) >= self.cache_limit:
            self._verdicts.clear()
            self._blocks.clear()
        self._verdicts[env] = verdict
        return verdict

    def check_block(self, block) -> tuple[str | None, frozenset]:
        """Authenticate every request of a block once per block object (it is shared by
        every simulated receiver); also return their signatures, for per-node CPU charging."""
        known = self._blocks.get(block)
        if known is None:
            verdict = None
            for r in block.requests:
                reason = self.authenticate(r)
                if reason is None and type(r.message) is not Request:
                    reason = "not-a-request"
                if reason is not None:
                    verdict = reason
                    break
            known = self._blocks[block] = (verdict, frozenset(r.signature for r in block.requests))
        return known

    def _check(self, env: Signed) -> str | None:
        entry = self.members.get(env.signer)
        if entry is None:
            return "unknown-signer"
        key, _org, role = entry
        allowed = ALLOWED_ROLES.get(type(env.message))
        if allowed is None:
            return "unexpected-message"
        if role not in allowed:
            return "unauthorised-role"
        if signed_bytes(env.message, self.chain_id, env.signer) != env.data:
            return "body-mismatch"
        good = self._good
        if good is not None:
            seen = (env.signer, env.signature, env.data)
            if seen in good:
                return None
        self.verifications += 1
        try:
            key.verify(env.signature, env.data)
        except InvalidSignature:
            return "bad-signature"
        if good is not None:
            if len(good) >= self.cache_limit:
                good.clear()
            good.add(seen)
        return None
