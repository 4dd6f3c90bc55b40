"""Housing provident fund information sharing (Chongqing's Mountain City Chain).

Employers and the fund centre record monthly deposits; the centre grants a
department (a bank, the housing bureau) access to one citizen's record until a
set time; a department's query succeeds only under an unexpired grant, and every
successful access is kept in the citizen's audit trail (a refused one stays in
the ledger as a failed transaction with its reason).
"""

from __future__ import annotations

from .base import Rejected, StateView, Tx
from .policy import policy, require, settings, text


class ProvidentFund:
    NAME = "provident_fund"
    OPS = ("deposit", "grant", "revoke", "query")

    def __init__(self, config: dict | None = None):
        config = settings(config, ('centre', 'depositors'))
        self.centre = policy(config, "centre", "any of [housing-fund-centre]")
        self.depositors = policy(config, "depositors", "any of [housing-fund-centre]")

    def organisations(self) -> set[str]:
        return set(self.centre.orgs | self.depositors.orgs)

    def execute(self, tx: Tx, state: StateView) -> dict | None:
        citizen = require(tx.args, "citizen", max_len=32)
        account_key = f"account/{citizen}"
        if tx.op == "deposit":
            self.depositors.check(tx, "record deposits")
            amount = require(tx.args, "amount_fen", int)
            month = require(tx.args, "month", max_len=7)
            if amount == 0:
                raise Rejected("a deposit must be positive")
            account = state.get(account_key) or {"citizen": citizen, "balance_fen": 0, "deposits": 0,
                                                 "employers": []}
            account["balance_fen"] += amount
            account["deposits"] += 1
            account["last_month"] = month
            if tx.org not in account["employers"]:
                account["employers"] = sorted(account["employers"] + [tx.org])
            state.put(account_key, account)
            return {"balance_fen": account["balance_fen"]}
        if tx.op == "grant":
            self.centre.check(tx, "grant access to fund records")
            grantee = require(tx.args, "org", max_len=48)
            until = require(tx.args, "until", int)
            if until <= tx.timestamp:
                raise Rejected("a grant must expire in the future")
            if state.get(account_key) is None:
                raise Rejected(f"no fund account for {citizen}")
            state.put(f"grant/{citizen}/{grantee}", {"until": until, "purpose": text(tx.args, "purpose", 64),
                                                      "by": tx.client, "height": tx.height})
            return {"until": until}
        if tx.op == "revoke":
            self.centre.check(tx, "revoke access to fund records")
            grantee = require(tx.args, "org", max_len=48)
            if state.get(f"grant/{citizen}/{grantee}") is None:
                raise Rejected(f"{grantee} holds no grant for {citizen}")
            state.delete(f"grant/{citizen}/{grantee}")
            return None
        # query: the department must hold an unexpired grant for this citizen
        grant = state.get(f"grant/{citizen}/{tx.org}")
        if grant is None:
            raise Rejected(f"{tx.org} holds no grant for {citizen}")
        if grant["until"] <= tx.timestamp:
            raise Rejected(f"{tx.org}'s grant for {citizen} expired")
        account = state.get(account_key)
        trail = state.get(f"access/{citizen}") or []
        trail.append({"org": tx.org, "by": tx.client, "height": tx.height, "at": tx.timestamp,
                      "purpose": text(tx.args, "purpose", 64)})
        state.put(f"access/{citizen}", trail)
        return {"balance_fen": account["balance_fen"], "deposits": account["deposits"]}
