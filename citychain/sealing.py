"""Off-chain encryption for the data-sharing app: AES-GCM for the data, and the data
key wrapped per department with X25519 (ECDH, then HKDF-SHA256, then AES-GCM).

The chain stores only the ciphertext's digest and the wrapped keys; this module is
what a department runs on its own machine to seal and to open a dataset.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO = b"citychain data-sharing key wrap v1"


def org_key(seed: int, chain_id: str, org: str) -> X25519PrivateKey:
    """A department's key-agreement key; derived from the seed in a simulation."""
    material = hashlib.sha256(f"citychain-x25519/v1/{seed}/{chain_id}/{org}".encode()).digest()
    return X25519PrivateKey.from_private_bytes(material)


def public_hex(key: X25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _kek(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=INFO).derive(shared)


def seal(plaintext: bytes, data_key: bytes, nonce: bytes) -> bytes:
    """nonce (12 bytes) + AES-256-GCM ciphertext with tag."""
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, None)


def open_sealed(blob: bytes, data_key: bytes) -> bytes:
    return AESGCM(data_key).decrypt(blob[:12], blob[12:], None)


def wrap(data_key: bytes, recipient_hex: str, ephemeral: X25519PrivateKey, nonce: bytes) -> str:
    """Base64 of ephemeral public key (32) + nonce (12) + AES-GCM(data key) (48)."""
    recipient = bytes.fromhex(recipient_hex)
    eph_pub = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kek = _kek(ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient)), eph_pub, recipient)
    return base64.b64encode(eph_pub + nonce + AESGCM(kek).encrypt(nonce, data_key, None)).decode("ascii")


def unwrap(wrapped: str, key: X25519PrivateKey) -> bytes:
    raw = base64.b64decode(wrapped)
    eph_pub, nonce, sealed = raw[:32], raw[32:44], raw[44:]
    me = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kek = _kek(key.exchange(X25519PublicKey.from_public_bytes(eph_pub)), eph_pub, me)
    return AESGCM(kek).decrypt(nonce, sealed, None)
