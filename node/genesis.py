"""Reading a genesis: chain id, root CA, members with their certificates, consensus parameters.

``genesis_hash`` (SHA-256 of the canonical encoding of genesis.json) is the
``prev_hash`` of block 1, so every block chains back to this membership.
``membership_from_doc`` checks every member's certificate against the genesis CA.
Building a genesis from a scenario is the tool's job (``citychain.genesis``).
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from consensus.encoding import canonical, sha256_hex

from .identity import public_key_of, subject_fields
from .membership import Membership


def genesis_hash(doc: dict) -> str:
    return sha256_hex(canonical(doc))


def membership_from_doc(doc: dict, cache_limit: int | None = None) -> Membership:
    """Check every certificate against the genesis CA and build the member table
    (``cache_limit``: see ``Membership``; a long-running node process sets it)."""
    ca = x509.load_pem_x509_certificate(doc["ca"].encode())
    members = {}
    for entry in doc["members"] + doc["clients"]:
        cert = x509.load_pem_x509_certificate(entry["cert"].encode())
        try:
            cert.verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError, TypeError):
            raise ValueError(f"genesis member {entry['id']}: certificate was not issued by this chain's CA") from None
        cn, org, role = subject_fields(cert)
        if (cn, org, role) != (entry["id"], entry["org"], entry["role"]):
            raise ValueError(f"genesis entry {entry['id']} does not match its certificate subject")
        members[entry["id"]] = (public_key_of(cert), org, role)
    return Membership(doc["chain_id"], members, cache_limit)


def load_genesis_doc(path: Path) -> dict:
    return json.loads(Path(path).read_text())
