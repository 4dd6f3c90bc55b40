"""Who may say what: authenticating envelopes against the genesis membership.

A message is accepted only from a member whose CA-issued certificate is in the
genesis, in a role allowed to send that kind of message, with a valid Ed25519
signature over exactly the bytes the message encodes.

Certificates (docs/messages.md, "Certificates at the node"): a member whose
certificate was not issued by the chain's CA is refused outright; one whose
certificate is not valid at the node's current time (not yet valid, expired, or
revoked from a date by the CA's revocation list) is refused while it is not. The
node's time maps to the calendar by ``epoch_ns`` (calendar ns since 1970 at node
time 0): a fixed date in the simulator, the wall clock in a process.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consensus.block import tx_root
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
                 cache_limit: int | None = None, refused: dict[str, str] | None = None,
                 windows: dict[str, tuple[int, int, int | None]] | None = None, epoch_ns: int = 0):
        self.chain_id = chain_id
        self.members = members  # id -> (public key, org, role)
        # Certificates: id -> a reason its every message is refused (a certificate not
        # from the chain's CA); id -> (valid from, valid until, revoked from or None) in
        # calendar ns, both ends of the validity inclusive (RFC 5280). No windows: no
        # time is checked (an auditor judges signatures, not when they arrive).
        self.refused = dict(refused or {})
        self.windows = dict(windows or {})
        self.epoch_ns = epoch_ns
        ends = [min(end, revoked - 1) if revoked is not None else end for _s, end, revoked in self.windows.values()]
        # Between these calendar times every member's certificate is valid: the fast path.
        self._all_valid = (max((w[0] for w in self.windows.values()), default=0), min(ends, default=1 << 80))
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

    def certificate_refusal(self, signer: str, now: int) -> str | None:
        """Why ``signer``'s certificate does not hold at node time ``now``, or None."""
        at = self.epoch_ns + now
        low, high = self._all_valid
        if low <= at <= high:
            return None
        window = self.windows.get(signer)
        if window is None:
            return None
        start, end, revoked = window
        if at < start:
            return "certificate-not-yet-valid"
        if revoked is not None and at >= revoked:
            return "certificate-revoked"
        if at > end:
            return "certificate-expired"
        return None

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
            verdict = self._unbound(block)
            for r in block.requests if verdict is None else ():
                reason = self.authenticate(r)
                if reason is None and type(r.message) is not Request:
                    reason = "not-a-request"
                if reason is not None:
                    verdict = reason
                    break
            known = self._blocks[block] = (verdict, frozenset(r.signature for r in block.requests))
        return known

    @staticmethod
    def _unbound(block) -> str | None:
        """Does the block hash to its header and its header's tx_root to its requests?
        A process's codec checks both as it decodes (``Block.create``, node/codec.py); in
        the simulator a block arrives as an object, so it is checked here, once per block
        object, under the codec's reasons. Without it one header (one hash, the one every
        vote names) could carry different requests to different nodes."""
        if block.header.compute_hash() != block.hash:
            return "bad-block-hash"
        if tx_root(block.requests) != block.header.tx_root:
            return "bad-tx-root"
        return None

    def _check(self, env: Signed) -> str | None:
        entry = self.members.get(env.signer)
        if entry is None:
            return "unknown-signer"
        refused = self.refused.get(env.signer)
        if refused is not None:
            return refused
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
