"""Merkle tree hash as in RFC 6962 section 2.1 (Certificate Transparency).

Leaves and interior nodes are domain-separated (0x00 / 0x01 prefixes), so a leaf
can never be passed off as an interior node. The empty tree hashes to SHA-256("").
"""

import hashlib

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def root_of_leaf_hashes(hashes: list[bytes]) -> bytes:
    """MTH over already-hashed leaves: split at the largest power of two < n."""
    n = len(hashes)
    if n == 0:
        return _sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(root_of_leaf_hashes(hashes[:k]), root_of_leaf_hashes(hashes[k:]))


def merkle_root(leaves: list[bytes]) -> bytes:
    return root_of_leaf_hashes([leaf_hash(leaf) for leaf in leaves])
