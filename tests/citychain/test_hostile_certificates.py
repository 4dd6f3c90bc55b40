"""Issue 12, hostile input: a member whose certificate does not hold, or who sends what
its role may not, is refused and counted by reason, and the chain keeps committing.

Each run is 4 consensus nodes (f = 1) and 2 observers; node-03 is the member with the
bad certificate (not the primary of view 0), so the other three are a quorum."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from citychain.scenario import Revocation
from citychain.summary import audit_run, summarize
from consensus.messages import Commit, PrePrepare, Prepare, Request
from node.genesis import membership_from_doc
from node.identity import NOT_AFTER, NOT_BEFORE, CertificateAuthority
from node.signing import Signer
from tests.citychain.hostile_world import MS, at, reissue, simulate, small

BAD = "node-03"


def committed_despite(run, reason: str, faulty: frozenset = frozenset()) -> dict:
    """Every transaction committed, the nodes agree, and the ledgers audit clean but
    those of ``faulty`` (a member refused for good keeps its own COMMIT in its
    certificates, which nobody else accepts)."""
    s = summarize(run, "hostile")
    report = audit_run(run)
    assert report.safety_violations == [] and set(report.invalid) <= faulty, report.invalid
    assert len({tuple(b.hash for b in map(lambda e: e.block, run.nodes[n].ledger.entries)) for n in run.nodes}) == 1
    assert s["committed_tx"] == s["submitted_tx"] == run.scenario.workload.transactions
    assert s["dropped"].get(reason, 0) > 0, s["dropped"]
    return s


def votes_of(run, member: str, when: int) -> tuple[int, int]:
    """How many of node-00's commit certificates hold ``member``'s COMMIT, for blocks
    proposed before ``when`` and for blocks proposed after it (by 10 ms: the votes of a
    block arrive some milliseconds after its proposal)."""
    before = after = 0
    for e in run.nodes["node-00"].ledger.entries:
        if any(c.signer == member for c in e.certificate):
            t = e.block.header.timestamp - run.membership.epoch_ns  # calendar time back to virtual
            before += t < when
            after += t > when + 10 * MS
    return before, after


def refused_by_everyone_else(run, reason: str) -> None:
    for node in run.genesis.replicas:
        if node != BAD:
            assert run.metrics.drops[node].get(reason, 0) > 0, (node, run.metrics.drops[node])


def test_an_expired_certificate_is_refused_from_its_expiry_on(monkeypatch):
    """node-03's certificate expires one virtual second into a two-second workload:
    its votes count until then (no drops before), and are refused after."""
    run = simulate(small(), monkeypatch, tweak=lambda g: reissue(g, BAD, valid=(NOT_BEFORE, at(1))))
    committed_despite(run, "certificate-expired")
    refused_by_everyone_else(run, "certificate-expired")
    before, after = votes_of(run, BAD, 1000 * MS)
    assert before > 0 and after == 0


def test_a_certificate_not_yet_valid_is_refused_until_it_is(monkeypatch):
    """Valid from one virtual second on: refused before, a voting member after (at the
    end node-03 holds the whole chain, by its own votes and state transfer alike)."""
    run = simulate(small(), monkeypatch, tweak=lambda g: reissue(g, BAD, valid=(at(1), NOT_AFTER)))
    committed_despite(run, "certificate-not-yet-valid")
    refused_by_everyone_else(run, "certificate-not-yet-valid")
    before, after = votes_of(run, BAD, 1000 * MS)
    assert before == 0 and after > 0


def test_a_certificate_from_another_ca_is_refused(monkeypatch):
    """Same CA name, another key: the node starts, refuses every message of that member."""
    def tweak(g):
        impostor = CertificateAuthority(g.chain_id, g.doc["name"], Ed25519PrivateKey.from_private_bytes(b"\x07" * 32))
        return reissue(g, BAD, ca=impostor)

    run = simulate(small(), monkeypatch, tweak=tweak)
    assert run.membership.refused == {BAD: "certificate-not-from-chain-ca"}
    committed_despite(run, "certificate-not-from-chain-ca", faulty=frozenset({BAD}))
    refused_by_everyone_else(run, "certificate-not-from-chain-ca")


def test_a_certificate_revoked_by_the_cas_crl_is_refused_from_its_revocation_date(monkeypatch):
    """The scenario's ``revocations`` become the CA's CRL (revocations.crl in an export)."""
    scenario = small().model_copy(update={"revocations": [Revocation(member="node-3", at_ms=1000)]})
    run = simulate(scenario, monkeypatch)
    assert run.genesis.crl is not None
    committed_despite(run, "certificate-revoked")
    refused_by_everyone_else(run, "certificate-revoked")
    before, after = votes_of(run, BAD, 1000 * MS)
    assert before > 0 and after == 0


def test_a_crl_not_signed_by_the_chains_ca_is_refused_at_load(monkeypatch):
    from citychain.genesis import build_genesis

    g = build_genesis(small())
    other = CertificateAuthority(g.chain_id, g.doc["name"], Ed25519PrivateKey.from_private_bytes(b"\x09" * 32))
    forged = cert_pem_crl(other.revocation_list({g.identities["node-00"].cert.serial_number: at(0)}))
    with pytest.raises(ValueError, match="not signed by this chain's CA"):
        membership_from_doc(g.doc, crl=forged, epoch_ns=0)


def cert_pem_crl(crl) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return crl.public_bytes(serialization.Encoding.PEM)


# ---- roles: each hostile envelope is delivered to every consensus node at 0.5 s ---------


def inject_at(when: int, make):
    """Deliver ``make(run)`` (one envelope) to every consensus node at ``when``."""
    def inject(run):
        def go(_arg, now):
            env = make(run)
            for node in run.genesis.replicas:
                run.nodes[node].on_message(env, now)
        run.engine.at(when, go, None)
    return inject


def signer(run, member: str) -> Signer:
    return Signer(member, run.genesis.identities[member].key, run.genesis.chain_id)


def last_block(run):
    return run.nodes["node-00"].ledger.entries[-1].block


@pytest.mark.parametrize("vote", [Prepare, Commit])
def test_an_observer_voting_is_refused(monkeypatch, vote):
    def make(run):
        b = last_block(run)
        return signer(run, "observer-00").sign(vote(0, b.height + 1, b.hash))

    run = simulate(small(), monkeypatch, inject=inject_at(500 * MS, make))
    committed_despite(run, "unauthorised-role")
    assert all(run.metrics.drops[n]["unauthorised-role"] == 1 for n in run.genesis.replicas)


def test_a_client_proposing_is_refused(monkeypatch):
    """A PRE-PREPARE signed by a client's key, for the next sequence, with a real block."""
    def make(run):
        b = last_block(run)
        client = run.genesis.clients[0].id
        return signer(run, client).sign(PrePrepare(0, b.height + 1, b.hash, b))

    run = simulate(small(), monkeypatch, inject=inject_at(500 * MS, make))
    committed_despite(run, "unauthorised-role")
    assert all(run.metrics.drops[n]["unauthorised-role"] == 1 for n in run.genesis.replicas)


def test_a_node_signing_a_client_request_is_refused(monkeypatch):
    """A request signed by a consensus node's key, sent as a client would: never executed."""
    sent = []

    def make(run):
        env = signer(run, "node-02").sign(Request(1, "records", "put", {"key": "k", "value": "v"}, 1))
        sent.append(env.digest)
        return env

    run = simulate(small(), monkeypatch, inject=inject_at(500 * MS, make))
    committed_despite(run, "unauthorised-role")
    assert all(run.metrics.drops[n]["unauthorised-role"] == 1 for n in run.genesis.replicas)
    for n in run.genesis.replicas:
        assert sent[0] not in {r.digest for e in run.nodes[n].ledger.entries for r in e.block.requests}


def test_a_revocation_of_a_member_the_chain_does_not_have_is_refused():
    from citychain.scenario import Scenario

    data = small().model_dump()
    data["revocations"] = [{"member": "observer-7", "at_ms": 0}]
    with pytest.raises(ValueError, match=r"revocations\[0\].member: observer-7 does not exist; there are 2 observers"):
        Scenario.model_validate(data)


def test_an_export_carries_the_crl_and_the_auditor_checks_who_signed_it(tmp_path):
    """The ledgers of a run with a revocation audit clean (blocks signed before the
    revocation stay valid); a CRL in the export that the CA did not sign is a member problem."""
    from citychain.audit import audit_export
    from citychain.export import write_run
    from citychain.sim.run import simulate as plain

    scenario = small(transactions=40).model_copy(update={"revocations": [Revocation(member="client-0", at_ms=0)]})
    run = plain(scenario)
    write_run(tmp_path / "out", run, summarize(run, "revoked"))
    crl = tmp_path / "out" / "genesis" / "revocations.crl"
    assert crl.read_bytes() == run.genesis.crl
    assert audit_export(tmp_path / "out").member_problems == []
    other = CertificateAuthority(run.genesis.chain_id, run.genesis.doc["name"],
                                 Ed25519PrivateKey.from_private_bytes(b"\x05" * 32))
    crl.write_bytes(cert_pem_crl(other.revocation_list({1: at(0)})))
    assert audit_export(tmp_path / "out").member_problems == [
        "genesis/revocations.crl: the revocation list is not signed by this chain's CA"]
