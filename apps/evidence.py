"""Judicial evidence preservation (Henan Chain).

A court, notary or police clerk anchors a document's SHA-256 with its metadata;
anyone may later verify a document against the chain; the anchor's block height,
timestamp and sequence number give a time-ordered proof. Sealing an anchor (it
may no longer be disputed) takes the agreement of several organisations.
"""

from __future__ import annotations

from .base import Rejected, StateView, Tx
from .policy import policy, require, settings, text

_HEX = set("0123456789abcdef")


class Evidence:
    NAME = "evidence"
    OPS = ("anchor", "verify", "seal")

    def __init__(self, config: dict | None = None):
        config = settings(config, ('anchorers', 'sealers'))
        self.anchorers = policy(config, "anchorers", "any of [court, notary, police]")
        self.sealers = policy(config, "sealers", "2 of [court, notary, police]")

    def organisations(self) -> set[str]:
        return set(self.anchorers.orgs | self.sealers.orgs)

    def execute(self, tx: Tx, state: StateView) -> dict | None:
        digest = require(tx.args, "sha256", max_len=64)
        if len(digest) != 64 or not _HEX.issuperset(digest):
            raise Rejected("sha256 must be 64 lower-case hex characters")
        key = f"doc/{digest}"
        record = state.get(key)
        if tx.op == "anchor":
            self.anchorers.check(tx, "anchor evidence")
            if record is not None:
                raise Rejected(f"document already anchored at height {record['height']}")
            seq = (state.get("count") or 0) + 1
            state.put("count", seq)
            record = {"sha256": digest, "title": require(tx.args, "title", max_len=128),
                      "case": text(tx.args, "case", 64), "org": tx.org, "by": tx.client,
                      "height": tx.height, "at": tx.timestamp, "seq": seq, "sealed": False}
            state.put(key, record)
            return {"seq": seq, "height": tx.height}
        if record is None:
            raise Rejected("document not anchored: no record of this SHA-256 (altered, or never anchored)")
        if tx.op == "verify":
            return {"anchored_at": record["at"], "height": record["height"], "seq": record["seq"],
                    "org": record["org"], "sealed": record["sealed"]}
        if record["sealed"]:
            raise Rejected("document is already sealed")
        if self.sealers.approve(state, f"seal/{digest}", tx, "seal evidence"):
            record["sealed"] = True
            record["sealed_at"] = tx.height
            state.put(key, record)
            return {"sealed": True}
        return {"sealed": False, "pending": True}
