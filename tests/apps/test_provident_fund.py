from apps.provident_fund import ProvidentFund


def fund(caller):
    return caller(ProvidentFund({"centre": "any of [centre]", "depositors": "any of [centre, employer]"}))


def test_deposit_grant_query_with_an_audit_trail(caller):
    c = fund(caller)
    c("employer", "deposit", citizen="C1", amount_fen=120_000, month="2026-01")
    assert c("centre", "deposit", citizen="C1", amount_fen=30_000, month="2026-02") == {"balance_fen": 150_000}
    c("centre", "grant", citizen="C1", org="bank", until=5_000, purpose="mortgage")
    assert c("bank", "query", at=4_000, citizen="C1", purpose="mortgage") == {"balance_fen": 150_000, "deposits": 2}
    trail = c.state.get("access/C1")
    assert [(a["org"], a["purpose"]) for a in trail] == [("bank", "mortgage")]


def test_queries_need_an_unexpired_grant(caller):
    c = fund(caller)
    c("employer", "deposit", citizen="C1", amount_fen=1, month="2026-01")
    c.refused("bank", "query", "bank holds no grant for C1", citizen="C1")
    c("centre", "grant", citizen="C1", org="bank", until=5_000)
    c.refused("bank", "query", "bank's grant for C1 expired", at=5_000, citizen="C1")
    c("centre", "revoke", citizen="C1", org="bank")
    c.refused("bank", "query", "no grant", at=4_000, citizen="C1")
    assert c.state.get("access/C1") is None  # refused accesses change nothing (they stay in the ledger)


def test_permissions_and_bad_inputs(caller):
    c = fund(caller)
    c.refused("bank", "deposit", "bank may not record deposits", citizen="C1", amount_fen=1, month="2026-01")
    c.refused("employer", "grant", "employer may not grant", citizen="C1", org="bank", until=9_000)
    c.refused("centre", "grant", "no fund account for C1", citizen="C1", org="bank", until=9_000)
    c.refused("employer", "deposit", "amount_fen must be a non-negative integer", citizen="C1", amount_fen=-5,
              month="2026-01")
    c.refused("employer", "deposit", "a deposit must be positive", citizen="C1", amount_fen=0, month="2026-01")
    c("employer", "deposit", citizen="C1", amount_fen=1, month="2026-01")
    c.refused("centre", "grant", "must expire in the future", at=10_000, citizen="C1", org="bank", until=9_000)
