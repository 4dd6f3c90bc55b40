"""Node processes take a new revocation list while they run (docs/deployment.md), and date
their blocks on the calendar (docs/messages.md, "Block time"): a real cluster of four
node processes through Mosquitto, the list written with `citychain crl revoke`."""

from __future__ import annotations

import datetime
import json
import os
import signal
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.genesis import CRL_FILE
from node.identity import CertificateAuthority, revocation_list
from tests.cluster.test_cluster import cli

pytestmark = pytest.mark.xdist_group("cluster")

UTC = datetime.timezone.utc


def _events(directory: Path, node: str, event: str) -> list[dict]:
    state = json.loads((directory / "cluster.json").read_text())
    proc = next(p for p in state["processes"] if node in p["ids"])
    out = []
    for line in Path(proc["log"]).read_text().splitlines():
        try:
            body = json.loads(line)
        except ValueError:
            continue
        if body.get("event") == event and body.get("node") == node:
            out.append(body)
    return out


def _wait_for(directory: Path, node: str, event: str, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = _events(directory, node, event)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{node}: {count} '{event}' log lines not seen within {timeout:.0f} s: {found}")
        time.sleep(0.2)


def _put(path: Path, data: bytes) -> None:
    """Replace the file in one step, as `citychain crl revoke` does (a node never reads half)."""
    tmp = path.with_name(path.name + ".test")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _pid(directory: Path, node: str) -> int:
    state = json.loads((directory / "cluster.json").read_text())
    return next(p["pid"] for p in state["processes"] if node in p["ids"])


@pytest.fixture(scope="module")
def four(tmp_path_factory, mosquitto):
    directory = tmp_path_factory.mktemp("crl") / "cluster"
    cli("cluster", "up", "taihu", "--nodes", 4, "--dir", directory, "--timeout", 180)
    yield directory
    cli("cluster", "down", "--dir", directory, check=False)


def test_node_processes_date_blocks_on_the_calendar(four, tmp_path):
    before = time.time_ns()
    row = json.loads(cli("cluster", "load", "--dir", four, "--transactions", 20, "--rate", 50, "--json").stdout)
    assert row["answered"] == row["submitted"] == 20
    after = time.time_ns()
    out = tmp_path / "export"
    cli("cluster", "audit", "--dir", four, "--out", out, "--json")
    stamps = [json.loads(line)["header"]["timestamp"]
              for line in (out / "ledgers" / "node-01.jsonl").read_text().splitlines()]
    assert stamps and stamps == sorted(set(stamps))  # strictly increasing
    # calendar time (the wall clock), not the monotonic clock's seconds since boot
    assert before - 60 * 10**9 <= stamps[-1] <= after + 10**9, (before, stamps[-1], after)


def test_a_running_node_takes_a_newer_list_and_refuses_older_or_foreign_ones(four):
    genesis_dir = four / "genesis"
    nodes = ["node-00", "node-01", "node-02", "node-03"]
    # 1. A new list written by the CLI: every node loads it at its next heartbeat.
    result = cli("crl", "revoke", "--genesis", genesis_dir, "--member", "node-03", "--reason", "key-compromise",
                 "--at", "2099-01-01T00:00:00")
    assert "CRL number 1" in result.stdout
    for node in nodes:
        loaded = _wait_for(four, node, "revocation-list-loaded", 1)
        assert loaded[-1]["crl_number"] == 1 and loaded[-1]["revoked"] == ["node-03"] and \
            loaded[-1]["trigger"] == "changed"
    shown = json.loads(cli("crl", "show", "--genesis", genesis_dir, "--json").stdout)
    assert shown["crl_number"] == 1 and [r["member"] for r in shown["revoked"]] == ["node-03"]
    assert shown["revoked"][0]["reason"] == "key-compromise"
    current = (genesis_dir / CRL_FILE).read_bytes()

    # 2. An older list (CRL number 0), signed by the CA: refused, the node keeps number 1.
    doc = json.loads((genesis_dir / "genesis.json").read_text())
    from cryptography import x509

    ca = x509.load_pem_x509_certificate(doc["ca"].encode())
    key = serialization.load_pem_private_key((four / "ca-key.pem").read_bytes(), None)
    older = revocation_list(ca, key, {}, issued=datetime.datetime(2026, 1, 1, tzinfo=UTC), number=0)
    _put(genesis_dir / CRL_FILE, older.public_bytes(serialization.Encoding.PEM))
    for node in nodes:
        refused = _wait_for(four, node, "revocation-list-refused", 1)
        assert "CRL number 0 is not above the loaded list's 1" in refused[-1]["reason"], refused[-1]
        assert refused[-1]["kept_crl_number"] == 1

    # 3. A list signed by another key, offered on SIGHUP: refused and logged.
    other = CertificateAuthority(doc["chain_id"], doc["name"], Ed25519PrivateKey.generate())
    forged = other.revocation_list({}).public_bytes(serialization.Encoding.PEM)
    _put(genesis_dir / CRL_FILE, forged)
    seen = len(_wait_for(four, "node-01", "revocation-list-refused", 2))  # the heartbeat saw the change
    os.kill(_pid(four, "node-01"), signal.SIGHUP)
    refused = _wait_for(four, "node-01", "revocation-list-refused", seen + 1)
    assert refused[-1]["trigger"] == "sighup" and "not signed by this chain's CA" in refused[-1]["reason"]

    # 4. The good list back, and a newer one on SIGHUP: taken.
    _put(genesis_dir / CRL_FILE, current)
    cli("crl", "revoke", "--genesis", genesis_dir, "--member", "node-02", "--at", "2099-01-01T00:00:00")
    os.kill(_pid(four, "node-01"), signal.SIGHUP)
    loaded = _wait_for(four, "node-01", "revocation-list-loaded", 2)
    assert loaded[1]["crl_number"] == 2 and loaded[-1]["crl_number"] == 2 and loaded[-1]["revoked"] == ["node-02", "node-03"]
    # The nodes kept running through all of it: the chain still answers.
    row = json.loads(cli("cluster", "load", "--dir", four, "--transactions", 10, "--rate", 20, "--json").stdout)
    assert row["answered"] == row["submitted"] == 10
