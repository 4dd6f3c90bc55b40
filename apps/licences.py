"""Electronic licences (Henan Chain): issue, renew, suspend, reinstate, revoke, verify.

Only the organisations a scenario names may issue each type of licence (a
business licence by market regulation, a driving licence by public security…);
revocation may need several of them to agree. Every change is kept in the
licence's history.
"""

from __future__ import annotations

from .base import Rejected, StateView, Tx
from .policy import settings, Policy, policies, require

class Licences:
    NAME = "licences"
    OPS = ("issue", "renew", "suspend", "reinstate", "revoke", "verify")

    def __init__(self, config: dict | None = None):
        config = settings(config, ('issuers', 'revokers'))
        self.issuers = policies(config, "issuers", default="") or {
            "business": Policy.parse("any of [market-regulation]")}
        self.revokers = policies(config, "revokers", default="")
        for kind in self.revokers:
            if kind not in self.issuers:
                raise ValueError(f"revokers.{kind}: no such licence type; types are {sorted(self.issuers)}")

    def organisations(self) -> set[str]:
        return {o for p in (*self.issuers.values(), *self.revokers.values()) for o in p.orgs}

    def execute(self, tx: Tx, state: StateView) -> dict | None:
        licence_id = require(tx.args, "licence_id", max_len=64)
        key = f"licence/{licence_id}"
        record = state.get(key)
        if tx.op == "issue":
            return self._issue(tx, state, key, licence_id, record)
        if record is None:
            raise Rejected(f"unknown licence {licence_id}")
        issuer = self.issuers[record["type"]]
        if tx.op == "verify":
            valid = record["status"] == "active" and tx.timestamp < record["valid_until"]
            return {"status": record["status"], "valid": valid, "holder": record["holder"]}
        if record["status"] == "revoked":
            raise Rejected(f"licence {licence_id} is revoked")
        if tx.op == "renew":
            issuer.check(tx, f"renew a {record['type']} licence")
            until = require(tx.args, "valid_until", int)
            if until <= record["valid_until"]:
                raise Rejected("a renewal must extend valid_until")
            record["valid_until"] = until
        elif tx.op == "suspend":
            issuer.check(tx, f"suspend a {record['type']} licence")
            if record["status"] != "active":
                raise Rejected(f"licence {licence_id} is {record['status']}, not active")
            record["status"] = "suspended"
        elif tx.op == "reinstate":
            issuer.check(tx, f"reinstate a {record['type']} licence")
            if record["status"] != "suspended":
                raise Rejected(f"licence {licence_id} is {record['status']}, not suspended")
            record["status"] = "active"
        elif tx.op == "revoke":
            policy = self.revokers.get(record["type"], issuer)
            if not policy.approve(state, f"revoke/{licence_id}", tx, f"revoke a {record['type']} licence"):
                self._log(record, tx, "revoke-approved")
                state.put(key, record)
                return {"status": record["status"], "pending": True}
            record["status"] = "revoked"
        self._log(record, tx, tx.op, reason=tx.args.get("reason"))
        state.put(key, record)
        return {"status": record["status"]}

    def _issue(self, tx, state, key, licence_id, record):
        kind = require(tx.args, "type", max_len=32)
        policy = self.issuers.get(kind)
        if policy is None:
            types = ", ".join(f"'{t}'" for t in sorted(self.issuers))
            raise Rejected(f"unknown licence type '{kind}'; types are [{types}]")
        policy.check(tx, f"issue a {kind} licence")
        if record is not None:
            raise Rejected(f"licence {licence_id} already exists")
        until = require(tx.args, "valid_until", int)
        if until <= tx.timestamp:
            raise Rejected("valid_until must be in the future")
        record = {"id": licence_id, "type": kind, "holder": require(tx.args, "holder", max_len=128),
                  "issuer": tx.org, "status": "active", "valid_until": until, "history": []}
        self._log(record, tx, "issue")
        state.put(key, record)
        return {"status": "active"}

    @staticmethod
    def _log(record, tx, what, reason=None):
        entry = {"op": what, "org": tx.org, "by": tx.client, "height": tx.height, "at": tx.timestamp}
        if isinstance(reason, str):
            entry["reason"] = reason[:256]
        record["history"].append(entry)
