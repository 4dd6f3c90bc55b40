"""CA-issued identities: openssl accepts them, and they are a pure function of the seed."""

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


def test_membership_refuses_a_genesis_whose_certificate_was_swapped(genesis, taihu_path):
    doc = dict(genesis.doc)
    foreign = build_genesis(load_scenario(taihu_path).with_overrides(nodes=7, seed=5)).doc
    doc["members"] = [foreign["members"][0], *genesis.doc["members"][1:]]
    with pytest.raises(ValueError, match="genesis member node-00: certificate was not issued by this chain's CA"):
        membership_from_doc(doc)
    assert genesis_hash(doc) != genesis.hash
