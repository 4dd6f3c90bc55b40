"""CA-issued identities: openssl accepts them, and they are a pure function of the seed."""

import datetime
import shutil
import subprocess

import pytest

from citychain.genesis import build_genesis
from citychain.scenario import load_scenario
from node.genesis import genesis_hash, membership_from_doc
from node.identity import subject_fields

OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def genesis(taihu_path):
    return build_genesis(load_scenario(taihu_path).with_overrides(nodes=7))


@pytest.mark.skipif(OPENSSL is None, reason="openssl binary not installed")
def test_openssl_verifies_every_node_certificate(genesis, tmp_path):
    genesis.write(tmp_path)
    certs = sorted(tmp_path.glob("node-*.pem"))
    assert len(certs) == 7
    result = subprocess.run([OPENSSL, "verify", "-CAfile", str(tmp_path / "ca.pem"), *map(str, certs)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": OK") == 7
    clients = sorted((tmp_path / "clients").glob("client-*.pem"))
    result = subprocess.run([OPENSSL, "verify", "-CAfile", str(tmp_path / "ca.pem"), str(clients[0])],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(OPENSSL is None, reason="openssl binary not installed")
def test_openssl_rejects_a_certificate_from_another_ca(genesis, taihu_path, tmp_path):
    other = build_genesis(load_scenario(taihu_path).with_overrides(nodes=7, seed=99))
    genesis.write(tmp_path / "a")
    other.write(tmp_path / "b")
    result = subprocess.run([OPENSSL, "verify", "-CAfile", str(tmp_path / "a" / "ca.pem"),
                             str(tmp_path / "b" / "node-00.pem")], capture_output=True, text=True)
    assert result.returncode != 0


def test_subject_names_the_node_its_organisation_and_role(genesis):
    ident = genesis.identities["node-00"]
    assert subject_fields(ident.cert) == ("node-00", ident.org, "consensus")
    assert {m["role"] for m in genesis.doc["members"]} == {"consensus"}
    assert {c["role"] for c in genesis.doc["clients"]} == {"client"}


def test_genesis_is_a_pure_function_of_scenario_and_seed(genesis, taihu_path):
    again = build_genesis(load_scenario(taihu_path).with_overrides(nodes=7))
    assert again.doc == genesis.doc and again.hash == genesis.hash
    other = build_genesis(load_scenario(taihu_path).with_overrides(nodes=7, seed=5))
    assert other.hash != genesis.hash


def test_membership_refuses_a_member_whose_certificate_was_swapped(genesis, taihu_path):
    """A node runs on without a member whose certificate another CA issued (every message
    of it is refused); the auditor refuses such a genesis outright (genesis_problems)."""
    doc = dict(genesis.doc)
    foreign = build_genesis(load_scenario(taihu_path).with_overrides(nodes=7, seed=5)).doc
    doc["members"] = [foreign["members"][0], *genesis.doc["members"][1:]]
    assert membership_from_doc(doc).refused == {"node-00": "certificate-not-from-chain-ca"}
    assert genesis_hash(doc) != genesis.hash


NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)


def test_genesis_problems_names_everything_an_auditor_must_not_trust(genesis, taihu_path):
    import copy

    from node.genesis import genesis_problems
    from node.identity import cert_pem

    assert genesis_problems(genesis.doc, NOW) == []
    foreign = build_genesis(load_scenario(taihu_path).with_overrides(nodes=7, seed=5))
    doc = copy.deepcopy(genesis.doc)
    doc["members"][0]["cert"] = foreign.doc["members"][0]["cert"]  # another CA's
    doc["members"][1]["org"] = "somebody-else"
    doc["members"][2]["role"] = "client"  # a client among the members
    doc["clients"].append(dict(doc["clients"][0]))  # an id twice
    problems = genesis_problems(doc, NOW)
    assert "genesis.json members node-00: certificate not issued by the chain's CA" in problems
    assert any(p.startswith("genesis.json members node-01: certificate its organisation is") for p in problems)
    assert "genesis.json members node-02: role 'client' does not belong in 'members'" in problems
    assert f"genesis.json clients {doc['clients'][0]['id']}: the id appears twice" in problems
    doc = copy.deepcopy(genesis.doc)
    doc["ca"] = cert_pem(genesis.identities["node-00"].cert)  # a member's certificate as the CA
    problems = genesis_problems(doc, NOW)
    assert "genesis.json: the CA certificate is not self-signed" in problems
    assert "genesis.json: the CA certificate is not marked as a CA (basic constraints)" in problems
    late = genesis_problems(genesis.doc, datetime.datetime(2036, 1, 2, tzinfo=datetime.timezone.utc))
    assert late[0] == "genesis.json: the CA certificate is not valid on 2036-01-02 (valid 2026-01-01 to 2036-01-01)"


def test_the_genesis_hash_is_over_the_files_exact_bytes(genesis, tmp_path):
    import hashlib

    from node.genesis import read_genesis

    genesis.write(tmp_path)
    raw = (tmp_path / "genesis.json").read_bytes()
    doc, digest = read_genesis(tmp_path / "genesis.json")
    assert digest == hashlib.sha256(raw).hexdigest() == genesis.hash and doc == genesis.doc
