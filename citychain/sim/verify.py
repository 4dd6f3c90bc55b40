"""Verify ahead: the simulator's Ed25519 verifications, started in a worker thread as
soon as an envelope is sent, so the main thread's Python work overlaps them (issue 13).

The simulator knows, when a node broadcasts or sends an envelope, that its receivers
will authenticate it. The network hands each newly sent envelope to ``VerifyAhead``,
which submits ``key.verify(signature, data)`` to a thread pool (cryptography's Ed25519
verify releases the GIL). When ``Membership`` later checks that envelope it calls the
member's key as before; the key is wrapped here, and its ``verify`` waits for the
answer already under way instead of verifying again.

A verdict is a pure function of (key, signature, bytes): the answer is the same
whichever thread computes it, and nothing else changes. Every role, body and
membership rule is still applied by ``Membership`` on the main thread, in the same
order, and the modelled CPU costs are charged exactly as before. So a run is
byte-identical with and without the pool (tests/sim/test_verify_ahead.py).
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

from node.membership import Membership

PENDING_LIMIT = 20_000  # envelopes sent but not yet checked; beyond this the oldest are forgotten


def default_threads() -> int:
    """Worker threads for verify-ahead: ``CITYCHAIN_VERIFY_THREADS``, else none.

    Off by default: a worker needs the GIL back after each verification, and the main
    thread lets go of it only every switch interval (5 ms), so the worker falls behind
    and the main thread waits for its answers. Measured on the shared two-core machine,
    it took main-thread CPU off but no wall time (docs/benchmarking.md)."""
    text = os.environ.get("CITYCHAIN_VERIFY_THREADS", "")
    try:
        return max(0, int(text)) if text else 0
    except ValueError:
        return 0


class _Key:
    """A member's public key whose ``verify`` first looks for an answer computed ahead."""

    __slots__ = ("key", "pending")

    def __init__(self, key, pending: dict):
        self.key = key
        self.pending = pending

    def verify(self, signature: bytes, data: bytes) -> None:
        item = self.pending.pop(signature, None)
        if item is not None and item[0] is self.key and item[1] == data:
            item[2].result()  # raises InvalidSignature exactly as key.verify would
            return
        self.key.verify(signature, data)

    def __getattr__(self, name):
        return getattr(self.key, name)


class VerifyAhead:
    def __init__(self, membership: Membership, threads: int):
        self.membership = membership
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="verify-ahead")
        self.pending: dict[bytes, tuple[object, bytes, Future]] = {}
        self.keys = {}
        for member, (key, org, role) in list(membership.members.items()):
            self.keys[member] = key
            membership.members[member] = (_Key(key, self.pending), org, role)
        self._verdicts = membership._verdicts

    def sent(self, env) -> None:
        """An envelope leaves a node (or a client): start checking its signature."""
        signature = env.signature
        if signature in self.pending or env in self._verdicts:
            return
        key = self.keys.get(env.signer)
        if key is None:
            return
        pending = self.pending
        if len(pending) >= PENDING_LIMIT:
            for old in list(pending)[:PENDING_LIMIT // 2]:
                del pending[old]
        pending[signature] = (key, env.data, self.pool.submit(key.verify, signature, env.data))

    def close(self) -> None:
        """Stop the workers and give the membership its plain keys back."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()
        members = self.membership.members
        for member, (key, org, role) in list(members.items()):
            if isinstance(key, _Key):
                members[member] = (key.key, org, role)
