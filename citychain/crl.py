"""The chain CA's revocation list in a genesis directory: read it, revoke a member in it.

``revocations.crl`` (PEM, beside genesis.json) is an X.509 CRL the chain's CA signs. Each
write carries the next CRL number and a later lastUpdate, so a node that reloads it while
running can refuse an older list (node/revocation.py). Only a cluster's directory holds
the CA's key (``ca-key.pem``, beside ``genesis/``): a genesis written by ``citychain
genesis`` has none, and its CA cannot revoke anyone through this tool. Beside the key the
tool keeps the last list it signed (``revocations-issued.crl``): the next one extends and
outnumbers it, whatever copy the genesis directory holds by then.
"""

from __future__ import annotations

import datetime
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.genesis import CRL_FILE, member_entries, read_genesis
from node.identity import revocation_list
from node.revocation import RevocationList, keep_crl, parse_crl, read_crl_file

CA_KEY_FILE = "ca-key.pem"
# The last list the CA signed, kept beside its key: the next list extends and outnumbers
# it even if the genesis directory's copy was rolled back or replaced meanwhile.
ISSUED_FILE = "revocations-issued.crl"
REASONS = tuple(sorted(f.name for f in x509.ReasonFlags if f not in (x509.ReasonFlags.unspecified,
                                                                        x509.ReasonFlags.remove_from_crl)))


class CrlError(Exception):
    """Why the command cannot do what it was asked (exit 2)."""


@dataclass(frozen=True)
class Entry:
    member: str | None  # None: a serial no member of this genesis holds
    serial: int
    revoked_from: datetime.datetime
    reason: str | None


def _genesis(genesis_dir: Path) -> tuple[dict, x509.Certificate]:
    try:
        doc, _hash = read_genesis(genesis_dir / "genesis.json")
        return doc, x509.load_pem_x509_certificate(doc["ca"].encode())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CrlError(f"{genesis_dir}/genesis.json: not a readable citychain genesis ({exc})") from None


def _serials(doc: dict) -> dict[int, str]:
    return {x509.load_pem_x509_certificate(e["cert"].encode()).serial_number: member
            for member, e in member_entries(doc).items()}


def current(genesis_dir: Path, ca: x509.Certificate) -> RevocationList | None:
    path = genesis_dir / CRL_FILE
    try:
        return parse_crl(read_crl_file(path), ca)  # a bounded regular file: a pipe would block
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise CrlError(f"{path}: not a revocation list of this chain's CA ({exc})") from None


def show(genesis_dir: Path) -> tuple[RevocationList | None, list[Entry]]:
    genesis_dir = Path(genesis_dir)
    doc, ca = _genesis(genesis_dir)
    crl = current(genesis_dir, ca)
    if crl is None:
        return None, []
    serials = _serials(doc)
    return crl, [Entry(serials.get(s), s, when, reason) for s, (when, reason) in sorted(crl.entries.items())]


def ca_key_path(genesis_dir: Path) -> Path | None:
    """The CA key beside genesis.json, or beside the genesis directory (a cluster's layout)."""
    for path in (genesis_dir / CA_KEY_FILE, genesis_dir.parent / CA_KEY_FILE):
        if path.exists():
            return path
    return None


def revoke(genesis_dir: Path, member: str, at: datetime.datetime | None, reason: str | None,
           now: datetime.datetime) -> RevocationList:
    """Add ``member``'s revocation from ``at`` (None: from ``now``, or, if it is revoked
    already, from the date it has: revoking again to add a reason must not move the date
    later and un-revoke what it signed meanwhile) and write the list, signed by the CA,
    with the next CRL number; atomically (a node reloading it never reads half)."""
    genesis_dir = Path(genesis_dir)
    if reason is not None and reason not in REASONS:
        raise CrlError(f"--reason {reason.replace('_', '-')}: not a CRL reason; one of "
                       f"{', '.join(r.replace('_', '-') for r in REASONS)}")
    doc, ca = _genesis(genesis_dir)
    entry = member_entries(doc).get(member)
    if entry is None:
        raise CrlError(f"{member}: no member or client of chain {doc['chain_id']}")
    key_path = ca_key_path(genesis_dir)
    if key_path is None:
        raise CrlError(f"no {CA_KEY_FILE} in {genesis_dir} or {genesis_dir.parent}: only a cluster's directory "
                       "holds the chain CA's key; sign the list where the key is kept")
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        raise CrlError(f"{key_path}: not a private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey) or key.public_key() != ca.public_key():
        raise CrlError(f"{key_path}: not the key of this chain's CA (genesis.json's ca)")
    # Read, add, sign and write under one lock: two revocations at once would otherwise
    # both extend the same list, the second write would lose the first's entry, and both
    # lists would carry the same CRL number (a node holding one refuses the other).
    # The lock is on the genesis directory itself: no lock file is left beside the list.
    lock = os.open(genesis_dir, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _revoke_locked(genesis_dir, key_path.parent / ISSUED_FILE, ca, key, entry, at, reason, now)
    finally:
        os.close(lock)


def _revoke_locked(genesis_dir: Path, issued_path: Path, ca: x509.Certificate, key: Ed25519PrivateKey,
                   entry: dict, at: datetime.datetime | None, reason: str | None,
                   now: datetime.datetime) -> RevocationList:
    old = current(genesis_dir, ca)
    try:
        last = parse_crl(read_crl_file(issued_path), ca)
    except FileNotFoundError:
        last = None
    except (OSError, ValueError, TypeError) as exc:
        raise CrlError(f"{issued_path}: not a revocation list of this chain's CA ({exc})") from None
    if last is not None and (old is None or old.older_than(last) is not None):
        old = last  # the genesis directory's copy is older than what the CA last signed
    entries = dict(old.entries) if old else {}
    serial = x509.load_pem_x509_certificate(entry["cert"].encode()).serial_number
    known = entries.get(serial)
    if at is None:  # no --at: a new revocation from now; an existing one keeps its date
        at = known[0] if known is not None else now.replace(microsecond=0)
    if reason is None and known is not None:
        reason = known[1]
    entries[serial] = (at, reason)
    # X.509 dates are whole seconds: the next list is dated at least a second after the last.
    issued = now.replace(microsecond=0)
    if old is not None and issued <= old.last_update:
        issued = old.last_update + datetime.timedelta(seconds=1)
    number = (old.number or 0) + 1 if old else 1
    crl = revocation_list(ca, key, {s: w for s, (w, _r) in entries.items()}, issued=issued,
                          next_update=issued + datetime.timedelta(days=365), number=number,
                          reasons={s: r for s, (_w, r) in entries.items() if r})
    pem = crl.public_bytes(serialization.Encoding.PEM)
    keep_crl(issued_path, pem)  # first: a crash between the two writes loses no number
    keep_crl(genesis_dir / CRL_FILE, pem)
    return parse_crl(pem, ca)
