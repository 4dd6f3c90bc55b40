from apps.licences import Licences

DAY = 86_400 * 10**9


def licences(caller):
    return caller(Licences({"issuers": {"business": "any of [market]", "driving": "any of [police]"},
                            "revokers": {"business": "2 of [market, court, tax]"}}))


def test_issue_verify_renew_suspend_reinstate_with_history(caller):
    c = licences(caller)
    assert c("market", "issue", licence_id="L1", type="business", holder="Acme", valid_until=DAY) == {"status": "active"}
    assert c("bank", "verify", licence_id="L1")["valid"] is True
    c("market", "renew", licence_id="L1", valid_until=2 * DAY)
    c("market", "suspend", licence_id="L1", reason="audit")
    assert c("bank", "verify", licence_id="L1") == {"status": "suspended", "valid": False, "holder": "Acme"}
    c("market", "reinstate", licence_id="L1")
    record = c.state.get("licence/L1")
    assert [h["op"] for h in record["history"]] == ["issue", "renew", "suspend", "reinstate"]
    assert record["history"][2]["reason"] == "audit"


def test_issuers_are_limited_by_licence_type(caller):
    c = licences(caller)
    c.refused("market", "issue", "market may not issue a driving licence", licence_id="D1", type="driving",
              holder="Li", valid_until=DAY)
    c.refused("police", "issue", "unknown licence type 'fishing'", licence_id="F1", type="fishing", holder="Li",
              valid_until=DAY)
    c("police", "issue", licence_id="D1", type="driving", holder="Li", valid_until=DAY)
    c.refused("market", "suspend", "market may not suspend a driving licence", licence_id="D1")


def test_bad_inputs_and_unknown_licences(caller):
    c = licences(caller)
    c.refused("market", "renew", "unknown licence L9", licence_id="L9", valid_until=DAY)
    c.refused("market", "issue", "valid_until must be in the future", licence_id="L2", type="business",
              holder="Acme", valid_until=10)
    c.refused("market", "issue", "holder must be a string", licence_id="L2", type="business", valid_until=DAY)
    c("market", "issue", licence_id="L2", type="business", holder="Acme", valid_until=DAY)
    c.refused("market", "issue", "already exists", licence_id="L2", type="business", holder="X", valid_until=DAY)
    c.refused("market", "renew", "must extend valid_until", licence_id="L2", valid_until=DAY)
    c.refused("market", "reinstate", "is active, not suspended", licence_id="L2")


def test_revocation_needs_two_of_three_organisations(caller):
    c = licences(caller)
    c("market", "issue", licence_id="L1", type="business", holder="Acme", valid_until=DAY)
    assert c("market", "revoke", licence_id="L1") == {"status": "active", "pending": True}
    c.refused("market", "revoke", "already approved", licence_id="L1")
    c.refused("bank", "revoke", "bank may not revoke", licence_id="L1")
    assert c("court", "revoke", licence_id="L1") == {"status": "revoked"}
    c.refused("market", "renew", "is revoked", licence_id="L1", valid_until=3 * DAY)
