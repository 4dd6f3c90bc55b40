"""Reading a genesis: chain id, root CA, members with their certificates, consensus parameters.

genesis.json is written as canonical JSON (docs/ledger.md) with nothing else in the
file, and the **genesis hash** is SHA-256 of the file's exact bytes; so it is also
SHA-256 of the canonical encoding of its content (``genesis_hash``). It is the
``prev_hash`` of block 1, so every block chains back to this membership.
``membership_from_doc`` checks every member's certificate against the genesis CA
and the CA's revocation list (``revocations.crl`` beside genesis.json, if any);
``genesis_problems`` does every check an auditor makes, and says what fails.
Building a genesis from a scenario is the tool's job (``citychain.genesis``).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consensus.encoding import canonical, sha256_hex

from .identity import public_key_of, subject_fields
from .membership import Membership
from .revocation import parse_crl, read_crl_file

MEMBER_ROLES = ("consensus", "observer")  # genesis "members"; "clients" hold role "client"


def genesis_bytes(doc: dict) -> bytes:
    """Exactly what genesis.json holds."""
    return canonical(doc)


def genesis_hash(doc: dict) -> str:
    return sha256_hex(genesis_bytes(doc))


def read_genesis(path: Path) -> tuple[dict, str]:
    """(document, genesis hash) of a genesis.json; the hash is over the file's exact bytes."""
    raw = Path(path).read_bytes()
    return json.loads(raw), sha256_hex(raw)


CRL_FILE = "revocations.crl"  # the CA's revocation list (PEM), beside genesis.json; optional


def membership_from_doc(doc: dict, cache_limit: int | None = None, crl: bytes | None = None,
                        epoch_ns: int | None = None) -> Membership:
    """Check every certificate against the genesis CA and build the member table
    (``cache_limit``: see ``Membership``; a long-running node process sets it).

    A member whose certificate the CA did not issue stays in the table, refused: the
    chain runs on without it (``certificate-not-from-chain-ca``; an auditor refuses
    such a genesis outright). With ``epoch_ns`` (the calendar ns of node time 0), the
    node also checks each certificate's validity period, and ``crl`` (a PEM X.509 CRL
    the CA signed), at the time each message arrives."""
    ca = x509.load_pem_x509_certificate(doc["ca"].encode())
    revoked = revocation_dates(doc, revocations(crl, ca)) if crl else {}
    members, refused, windows = {}, {}, {}
    for entry in doc["members"] + doc["clients"]:
        cert = x509.load_pem_x509_certificate(entry["cert"].encode())
        cn, org, role = subject_fields(cert)
        if (cn, org, role) != (entry["id"], entry["org"], entry["role"]):
            raise ValueError(f"genesis entry {entry['id']} does not match its certificate subject")
        members[entry["id"]] = (public_key_of(cert), org, role)
        if not _issued_by(cert, ca):
            refused[entry["id"]] = "certificate-not-from-chain-ca"
        windows[entry["id"]] = (calendar_ns(cert.not_valid_before_utc), calendar_ns(cert.not_valid_after_utc),
                                revoked.get(entry["id"]))
    if epoch_ns is None:
        return Membership(doc["chain_id"], members, cache_limit, refused)
    return Membership(doc["chain_id"], members, cache_limit, refused, windows, epoch_ns)


def revocations(crl_pem: bytes, ca: x509.Certificate) -> dict[int, datetime.datetime]:
    """Certificate serial -> the date it is revoked from, by a CRL the chain's CA
    signed; ValueError for any other CRL (node/revocation.py)."""
    return parse_crl(crl_pem, ca).revoked()


def revocation_dates(doc: dict, revoked: dict[int, datetime.datetime]) -> dict[str, int]:
    """Member id -> calendar ns it is revoked from, for the serials a CRL names."""
    out = {}
    for entry in doc["members"] + doc["clients"]:
        when = revoked.get(x509.load_pem_x509_certificate(entry["cert"].encode()).serial_number)
        if when is not None:
            out[entry["id"]] = calendar_ns(when)
    return out


def read_crl(genesis_dir: Path) -> bytes | None:
    """The CA's revocation list beside genesis.json, or None if there is none."""
    path = Path(genesis_dir) / CRL_FILE
    try:
        return read_crl_file(path)  # a regular file of bounded size (node/revocation.py)
    except FileNotFoundError:
        return None


def calendar_ns(at: datetime.datetime) -> int:
    """A calendar time as ns since 1970-01-01T00:00:00Z (a node's ``epoch_ns``)."""
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000


def load_genesis_doc(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _raw_key(cert: x509.Certificate) -> bytes | None:
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        return None
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _validity(cert: x509.Certificate, at: datetime.datetime) -> str | None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not start <= at <= end:
        return f"not valid on {at:%Y-%m-%d} (valid {start:%Y-%m-%d} to {end:%Y-%m-%d})"
    return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def certificate_problems(cert: x509.Certificate, ca: x509.Certificate, member_id: str, org: str, role: str,
                         at: datetime.datetime, key: bytes | None = None, expired_ok: bool = False) -> list[str]:
    """Why ``cert`` is not the certificate of member ``member_id`` (of ``org``, in
    ``role``) issued by ``ca`` and valid at ``at``; with ``key``, also when its public
    key is not that one (the genesis entry's). Empty if it is. With ``expired_ok``, a
    certificate whose period ended before ``at`` passes (``expired_on`` says when): a
    chain may outlive a member's certificate, and what it signed before stays valid."""
    problems = [] if _issued_by(cert, ca) else ["not issued by the chain's CA"]
    cn, cert_org, cert_role = subject_fields(cert)
    for what, got, want in (("common name", cn, member_id), ("organisation", cert_org, org), ("role", cert_role, role)):
        if got != want:
            problems.append(f"its {what} is {got!r}, the genesis says {want!r}")
    raw = _raw_key(cert)
    if raw is None:
        problems.append("its key is not Ed25519")
    elif key is not None and raw != key:
        problems.append("its public key is not the one in genesis.json")
    if _is_ca(cert):
        problems.append("it is a CA certificate, not a member's")
    late = _validity(cert, at)
    if late and expired_ok and expired_on(cert, at):
        late = None
    return problems + [late] if late else problems


def expired_on(cert: x509.Certificate, at: datetime.datetime) -> datetime.datetime | None:
    """When ``cert``'s validity period ended, if that was before ``at``."""
    end = cert.not_valid_after_utc
    return end if end < at else None


def ca_problems(ca: x509.Certificate, at: datetime.datetime) -> list[str]:
    problems = [] if _issued_by(ca, ca) else ["the CA certificate is not self-signed"]
    if not _is_ca(ca):
        problems.append("the CA certificate is not marked as a CA (basic constraints)")
    late = _validity(ca, at)
    return problems + [f"the CA certificate is {late}"] if late else problems


def member_entries(doc: dict) -> dict[str, dict]:
    """Every member and client entry of a genesis, by id."""
    return {e["id"]: e for e in doc["members"] + doc["clients"]}


def genesis_problems(doc: dict, at: datetime.datetime, expired_ok: bool = False) -> list[str]:
    """Every reason not to trust this genesis document: its CA, and each entry's
    certificate (issued by that CA, naming the entry's id, organisation and role,
    within its validity period at ``at``, or only expired before it with ``expired_ok``),
    ids unique, roles in the right list."""
    try:
        ca = x509.load_pem_x509_certificate(doc["ca"].encode())
    except ValueError:
        return ["genesis.json: 'ca' is not a PEM certificate"]
    problems = [f"genesis.json: {p}" for p in ca_problems(ca, at)]
    seen: set[str] = set()
    keys: dict[bytes, str] = {}  # one key, one member: else its holder has two votes, or two roles
    for field, roles in (("members", MEMBER_ROLES), ("clients", ("client",))):
        for entry in doc[field]:
            who = f"genesis.json {field} {entry['id']}"
            if entry["id"] in seen:
                problems.append(f"{who}: the id appears twice")
            seen.add(entry["id"])
            if entry["role"] not in roles:
                problems.append(f"{who}: role {entry['role']!r} does not belong in {field!r}")
            try:
                cert = x509.load_pem_x509_certificate(entry["cert"].encode())
            except ValueError:
                problems.append(f"{who}: 'cert' is not a PEM certificate")
                continue
            problems.extend(f"{who}: certificate {p}"
                            for p in certificate_problems(cert, ca, entry["id"], entry["org"], entry["role"], at,
                                                          expired_ok=expired_ok))
            raw = _raw_key(cert)
            if raw is not None:
                if raw in keys:
                    problems.append(f"{who}: certificate has the same public key as {keys[raw]}'s")
                keys.setdefault(raw, entry["id"])
    return problems


def entry_key(entry: dict) -> bytes | None:
    """The raw Ed25519 public key of a genesis entry's certificate."""
    return _raw_key(x509.load_pem_x509_certificate(entry["cert"].encode()))
