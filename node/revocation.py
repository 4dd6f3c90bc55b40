"""The chain CA's revocation list as a node holds it, and when a new one may replace it.

A node reads ``revocations.crl`` when it starts and again while it runs (on SIGHUP, or
when the file changed: citychain/cluster/process.py). A list replaces the one held only
if the chain's CA signed it and it is newer: a higher CRL number, or, without numbers on
both, a later lastUpdate. An older list would bring revoked members back (an attacker
with write access to the directory, or a stale copy), so it is refused and the node
keeps the list it holds (docs/deployment.md).
"""

from __future__ import annotations

import datetime
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509


@dataclass(frozen=True)
class RevocationList:
    number: int | None  # the CRLNumber extension, if the list has one
    last_update: datetime.datetime
    next_update: datetime.datetime | None
    entries: dict[int, tuple[datetime.datetime, str | None]]  # serial -> (revoked from, reason name)

    def revoked(self) -> dict[int, datetime.datetime]:
        return {serial: when for serial, (when, _reason) in self.entries.items()}

    def older_than(self, other: RevocationList) -> str | None:
        """Why this list may not replace ``other`` (it is not newer), or None."""
        if self.number is not None and other.number is not None:
            if self.number <= other.number:
                return f"CRL number {self.number} is not above the loaded list's {other.number}"
            return None
        if self.last_update <= other.last_update:
            return (f"lastUpdate {self.last_update.isoformat()} is not after the loaded list's "
                    f"{other.last_update.isoformat()}")
        return None


MAX_CRL_BYTES = 16 << 20  # a CRL naming every member of a large chain is a few hundred KiB


def read_crl_file(path: Path) -> bytes:
    """The bytes of the revocation list at ``path``: a regular file (a symlink to one is
    followed) of at most MAX_CRL_BYTES. Opened without blocking and checked before it is
    read, so a named pipe, a device or a huge file put in its place is refused at once
    (ValueError), not read on the node's event loop. FileNotFoundError if there is none."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path} is not a regular file")
        if st.st_size > MAX_CRL_BYTES:
            raise ValueError(f"{path} holds {st.st_size} bytes, more than {MAX_CRL_BYTES}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_CRL_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_CRL_BYTES:
        raise ValueError(f"{path} grew past {MAX_CRL_BYTES} bytes while read")
    return data


def parse_crl(pem: bytes, ca: x509.Certificate) -> RevocationList:
    """The list in ``pem``; ValueError unless the chain's CA (``ca``) signed it (a node
    must not take revocations on anyone else's word)."""
    crl = x509.load_pem_x509_crl(pem)
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):
        raise ValueError("the revocation list is not signed by this chain's CA")
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = None
    entries = {}
    for r in crl:
        try:
            reason = r.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
        except x509.ExtensionNotFound:
            reason = None
        entries[r.serial_number] = (r.revocation_date_utc, reason)
    return RevocationList(number, crl.last_update_utc, crl.next_update_utc, entries)


def keep_crl(path: Path, pem: bytes) -> None:
    """Write a revocation list to ``path`` atomically and durably: a temporary file,
    fsync, rename, and the directory fsynced, so a reader never sees half a list and the
    rename itself survives a crash (a node keeping the list it took; ``citychain crl``)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
