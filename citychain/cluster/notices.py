"""A node's signed notices on its status topic: what it executed, and how it is.

A client holds a transaction answered once f + 1 consensus nodes say they executed
the same block holding it (PBFT section 4.1's f + 1 matching replies), and the
operator's ``cluster status`` reads height, view and peers from the same notices.
Like every consensus message they are signed by the node's key, so the broker
cannot forge a reply; the format is in docs/deployment.md.
"""

from __future__ import annotations

import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consensus.encoding import canonical


class BadNotice(ValueError):
    pass


def sign_notice(key: Ed25519PrivateKey, body: dict) -> bytes:
    data = canonical(body)
    return canonical({"data": data.decode("ascii"), "sig": key.sign(data).hex()})


def read_notice(payload: bytes, chain_id: str, keys: dict[str, Ed25519PublicKey]) -> dict:
    """The notice's body, once its signature by the node it names is checked."""
    try:
        outer = json.loads(payload)
        data = outer["data"].encode("ascii")
        signature = bytes.fromhex(outer["sig"])
        body = json.loads(data)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeEncodeError):
        raise BadNotice("malformed") from None
    if not isinstance(body, dict) or body.get("chain") != chain_id:
        raise BadNotice("wrong-chain")
    key = keys.get(body.get("node"))
    if key is None:
        raise BadNotice("unknown-node")
    try:
        key.verify(signature, data)
    except InvalidSignature:
        raise BadNotice("bad-signature") from None
    return body
