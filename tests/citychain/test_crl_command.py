"""`citychain crl revoke` and `crl show` (docs/deployment.md, "citychain crl"), through the
real CLI, and which list may replace which (node/revocation.py)."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from citychain.cluster.process import write_private_key
from citychain.genesis import build_genesis
from citychain.scenario import load_with_overrides
from node.genesis import CRL_FILE, membership_from_doc, revocations
from node.identity import CertificateAuthority, revocation_list
from node.revocation import parse_crl

UTC = datetime.timezone.utc


def crl(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "citychain", "crl", *map(str, args)], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def built():
    return build_genesis(load_with_overrides("taihu", nodes=4))


@pytest.fixture
def cluster_dir(tmp_path, built):
    """A cluster's layout: genesis/ and the CA key beside it."""
    built.write(tmp_path / "genesis")
    write_private_key(tmp_path / "ca-key.pem", built.ca.key)
    return tmp_path


def test_revoke_writes_a_ca_signed_list_with_rising_numbers_and_show_lists_it(cluster_dir, built):
    g = cluster_dir / "genesis"
    client = built.clients[0].id
    first = crl("revoke", "--genesis", g, "--member", "node-03", "--at", "2026-03-01T10:00:00",
                "--reason", "key-compromise")
    assert first.returncode == 0, first.stderr
    second = crl("revoke", "--genesis", g, "--member", client)
    assert second.returncode == 0 and "CRL number 2, 2 revoked" in second.stdout, second.stdout
    assert sorted(p.name for p in g.iterdir() if p.name.startswith(CRL_FILE)) == [CRL_FILE]  # no temporary left
    listed = parse_crl((g / CRL_FILE).read_bytes(), built.ca.cert)
    assert listed.number == 2
    dates = revocations((g / CRL_FILE).read_bytes(), built.ca.cert)
    assert dates[built.identities["node-03"].cert.serial_number] == datetime.datetime(2026, 3, 1, 10, tzinfo=UTC)
    # the node's membership takes the list: node-03 is refused from its date on
    doc = json.loads((g / "genesis.json").read_text())
    m = membership_from_doc(doc, crl=(g / CRL_FILE).read_bytes(), epoch_ns=0)
    march = int(datetime.datetime(2026, 3, 1, 10, tzinfo=UTC).timestamp()) * 10**9
    assert m.refusal_at("node-03", march - 1) is None and m.refusal_at("node-03", march) == "certificate-revoked"
    shown = json.loads(crl("show", "--genesis", g, "--json").stdout)
    assert shown["crl_number"] == 2
    assert {(r["member"], r["reason"]) for r in shown["revoked"]} == {("node-03", "key-compromise"), (client, None)}
    table = crl("show", "--genesis", g)
    assert table.returncode == 0 and "node-03" in table.stdout and "key-compromise" in table.stdout


def test_revoking_again_without_at_keeps_the_date_and_with_at_re_dates(cluster_dir, built):
    """Revoking a revoked member again, say to add a reason, must not move its date later:
    that would un-revoke what it signed in between (review revbt)."""
    g = cluster_dir / "genesis"
    serial = built.identities["node-03"].cert.serial_number
    assert crl("revoke", "--genesis", g, "--member", "node-03", "--at", "2026-03-01T10:00:00").returncode == 0
    again = crl("revoke", "--genesis", g, "--member", "node-03", "--reason", "key-compromise")
    assert again.returncode == 0, again.stderr
    assert revocations((g / CRL_FILE).read_bytes(), built.ca.cert)[serial] == datetime.datetime(2026, 3, 1, 10, tzinfo=UTC)
    shown = json.loads(crl("show", "--genesis", g, "--json").stdout)
    assert [(r["member"], r["reason"]) for r in shown["revoked"]] == [("node-03", "key-compromise")]
    assert crl("revoke", "--genesis", g, "--member", "node-03", "--at", "2026-02-01").returncode == 0
    assert revocations((g / CRL_FILE).read_bytes(), built.ca.cert)[serial] == datetime.datetime(2026, 2, 1, tzinfo=UTC)
    shown = json.loads(crl("show", "--genesis", g, "--json").stdout)
    assert [(r["member"], r["reason"]) for r in shown["revoked"]] == [("node-03", "key-compromise")]


def test_show_without_a_list_says_nobody_is_revoked(cluster_dir):
    out = crl("show", "--genesis", cluster_dir / "genesis", "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout) == {"crl_number": None, "last_update": None, "next_update": None, "revoked": []}


@pytest.mark.parametrize("case", ["no-key", "wrong-key", "unknown-member", "foreign-list", "bad-reason",
                                  "no-genesis"])
def test_revoke_refuses_bad_input_with_exit_2_and_writes_nothing(tmp_path, cluster_dir, built, case):
    g = cluster_dir / "genesis"
    member = "node-02"
    args = ["revoke", "--genesis", g, "--member", member]
    if case == "no-key":
        (cluster_dir / "ca-key.pem").unlink()
    elif case == "wrong-key":
        write_private_key(cluster_dir / "ca-key.pem", Ed25519PrivateKey.generate())
    elif case == "unknown-member":
        args[-1] = "node-99"
    elif case == "foreign-list":
        other = CertificateAuthority(built.chain_id, built.doc["name"], Ed25519PrivateKey.generate())
        (g / CRL_FILE).write_bytes(other.revocation_list({}).public_bytes(serialization.Encoding.PEM))
    elif case == "bad-reason":
        args += ["--reason", "bored"]
    elif case == "no-genesis":
        args[2] = tmp_path / "empty"
        (tmp_path / "empty").mkdir()
    before = (g / CRL_FILE).read_bytes() if (g / CRL_FILE).exists() else None
    out = crl(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    after = (g / CRL_FILE).read_bytes() if (g / CRL_FILE).exists() else None
    assert after == before


def test_a_list_replaces_another_only_if_newer(built):
    ca, key = built.ca.cert, built.ca.key
    jan, feb = (datetime.datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2))

    def listed(issued, number=None):
        pem = revocation_list(ca, key, {}, issued=issued, number=number).public_bytes(serialization.Encoding.PEM)
        return parse_crl(pem, ca)

    assert listed(feb, 2).older_than(listed(jan, 1)) is None
    assert "not above" in listed(feb, 1).older_than(listed(jan, 1))  # the number decides when both have one
    assert "not above" in listed(feb, 1).older_than(listed(jan, 3))
    assert listed(feb).older_than(listed(jan, 5)) is None  # without numbers on both: lastUpdate
    assert "not after" in listed(jan).older_than(listed(jan))
