"""A node process's revocation list, reloaded while it runs (docs/deployment.md).

The CA publishes a new ``revocations.crl`` into the genesis directory (``citychain crl
revoke``); each node takes it on SIGHUP, or at the next heartbeat after the file changed
(its size, mtime or inode: one ``stat`` a heartbeat, no busy poll). A list the chain's CA
did not sign, an unreadable one, one that is not newer than the list held
(node/revocation.py), or a file that is gone, is refused and logged; the node keeps the
list it holds.

The list taken is also kept in the node's data directory (``revocations.crl`` there),
written before it is used, so a restart starts from the newest list the node ever took
and an older copy left in the genesis directory cannot bring a revoked member back.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from cryptography import x509

from node.genesis import CRL_FILE, revocation_dates
from node.membership import Membership
from node.revocation import RevocationList, keep_crl, parse_crl, read_crl_file

log = logging.getLogger("citychain.node")


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class CrlWatch:
    def __init__(self, node_id: str, genesis_dir: Path, doc: dict, ca: x509.Certificate, membership: Membership,
                 loaded: RevocationList | None, keep: Path | None = None):
        self.node_id = node_id
        self.keep = keep  # where the list taken is kept across restarts (the data directory)
        self.path = Path(genesis_dir) / CRL_FILE
        self.doc, self.ca, self.membership = doc, ca, membership
        self.loaded = loaded
        self.stamp = _stamp(self.path)

    def check(self) -> None:
        """On the heartbeat: reload if the file changed since it was last read."""
        if _stamp(self.path) != self.stamp:
            self.reload("changed")

    def reload(self, why: str) -> bool:
        """Read the file and take it if it may replace the list held; True if taken."""
        self.stamp = _stamp(self.path)
        try:
            pem = read_crl_file(self.path)
            new = parse_crl(pem, self.ca)
        except FileNotFoundError:
            return self._refuse(why, "the file is gone (the list held stays: removing it revokes nothing back)")
        except (OSError, ValueError, TypeError) as exc:
            return self._refuse(why, f"not a revocation list of this chain's CA ({exc})")
        if self.loaded is not None:
            older = new.older_than(self.loaded)
            if older is not None:
                return self._refuse(why, older)
        dates = revocation_dates(self.doc, new.revoked())
        if self.keep is not None:
            try:
                keep_crl(self.keep, pem)
            except OSError as exc:
                return self._refuse(why, f"could not keep it in the data directory ({exc})")
        self.membership.set_revoked(dates)
        self.loaded = new
        log.info(json.dumps({"node": self.node_id, "event": "revocation-list-loaded", "trigger": why,
                             "crl_number": new.number, "last_update": new.last_update.isoformat(),
                             "revoked": sorted(dates)}))
        return True

    def _refuse(self, why: str, reason: str) -> bool:
        log.warning(json.dumps({"node": self.node_id, "event": "revocation-list-refused", "trigger": why,
                                "file": str(self.path), "reason": reason,
                                "kept_crl_number": self.loaded.number if self.loaded else None}))
        return False
