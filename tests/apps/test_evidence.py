import hashlib

from apps.evidence import Evidence

DOC = hashlib.sha256(b"the contract").hexdigest()
TAMPERED = hashlib.sha256(b"the contract, altered").hexdigest()


def evidence(caller):
    return caller(Evidence({"anchorers": "any of [court, notary]", "sealers": "2 of [court, notary, police]"}))


def test_anchor_then_verify_gives_a_time_ordered_proof(caller):
    c = evidence(caller)
    first = c("court", "anchor", at=50, sha256=DOC, title="contract", case="(2026) 1")
    second = c("notary", "anchor", at=60, sha256=TAMPERED, title="other")
    assert first["seq"] < second["seq"] and first["height"] < second["height"]
    proof = c("bank", "verify", sha256=DOC)
    assert proof["anchored_at"] == 50 and proof["org"] == "court" and proof["sealed"] is False


def test_a_tampered_document_does_not_verify(caller):
    c = evidence(caller)
    c("court", "anchor", sha256=DOC, title="contract")
    c.refused("bank", "verify", "not anchored", sha256=TAMPERED)


def test_permissions_duplicates_and_bad_hashes(caller):
    c = evidence(caller)
    c.refused("bank", "anchor", "bank may not anchor evidence", sha256=DOC, title="x")
    c.refused("court", "anchor", "64 lower-case hex", sha256="abc", title="x")
    c("court", "anchor", sha256=DOC, title="contract")
    c.refused("notary", "anchor", "already anchored", sha256=DOC, title="again")


def test_sealing_takes_two_organisations(caller):
    c = evidence(caller)
    c("court", "anchor", sha256=DOC, title="contract")
    assert c("court", "seal", sha256=DOC) == {"sealed": False, "pending": True}
    c.refused("bank", "seal", "bank may not seal", sha256=DOC)
    assert c("police", "seal", sha256=DOC) == {"sealed": True}
    c.refused("notary", "seal", "already sealed", sha256=DOC)
