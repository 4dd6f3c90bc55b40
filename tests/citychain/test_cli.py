"""The citychain command line, run as a user runs it."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from citychain.cli import main

REQUIRED = {"scenario", "chain_id", "nodes", "f", "seed", "submitted_tx", "committed_tx", "blocks", "tps",
            "latency_ms", "messages", "bytes", "view_changes", "agreement", "safety_violations", "head",
            "sim_seconds", "wall_seconds"}


@pytest.fixture(scope="module")
def exported(taihu_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(main, ["run", str(taihu_path), "--nodes", "7", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_json_is_exactly_one_object_with_the_documented_fields(exported):
    _, output = exported
    summary = json.loads(output)  # fails if anything else is on stdout
    assert REQUIRED <= set(summary)
    assert set(summary["latency_ms"]) >= {"p50", "p95", "p99", "max"}
    assert set(summary["messages"]) == {"total", "consensus", "background", "client", "by_type"}
    assert set(summary["head"]) == {"height", "hash"}
    assert summary["agreement"] is True and summary["committed_tx"] == 1000


def test_run_out_writes_summary_genesis_and_one_ledger_per_node(exported):
    out, output = exported
    assert json.loads((out / "summary.json").read_text())["head"] == json.loads(output)["head"]
    assert (out / "genesis" / "genesis.json").is_file() and (out / "genesis" / "ca.pem").is_file()
    ledgers = sorted(p.name for p in (out / "ledgers").iterdir())
    assert ledgers == [f"node-{i:02d}.jsonl" for i in range(7)]
    line = json.loads((out / "ledgers" / "node-03.jsonl").read_text().splitlines()[0])
    assert set(line) == {"hash", "header", "txs", "certificate", "receipts"}
    assert line["header"]["height"] == 1


def test_audit_passes_on_an_honest_run(exported):
    out, _ = exported
    result = CliRunner().invoke(main, ["audit", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["safe"] and report["agreement"] and set(report["heights"].values()) == {json.loads(
        (out / "summary.json").read_text())["blocks"]}


# Tampered exports: tests/citychain/test_audit.py.


def test_invalid_scenario_exits_2_with_the_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("chain: {id: x, name: X}\nnodes: 2\nsites: [{id: a, name: A}]\n"
                   "organisations: [{id: o, name: O, site: a}]\n")
    result = CliRunner().invoke(main, ["run", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "nodes" in result.output


@pytest.mark.parametrize("command", [[], ["run"], ["genesis"], ["audit"], ["query"], ["bench"], ["calibrate"],
                                     ["scenarios"]])
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_genesis_command_and_console_script(taihu_path, tmp_path):
    result = subprocess.run([sys.executable, "-m", "citychain.cli", "genesis", str(taihu_path), "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "genesis.json").read_text())
    assert len(doc["members"]) == 24 and doc["chain_id"] == "taihu"
    assert (tmp_path / "node-23.pem").is_file()


@pytest.mark.skipif(__import__("shutil").which("openssl") is None, reason="openssl binary not installed")
def test_an_outside_auditor_checks_a_block_with_openssl(exported, tmp_path):
    """docs/ledger.md's recipe: hash the header, then verify each COMMIT with openssl."""
    import hashlib

    out, _ = exported
    line = json.loads((out / "ledgers" / "node-05.jsonl").read_text().splitlines()[2])
    header = json.dumps(line["header"], sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(header).hexdigest() == line["hash"]
    verified = set()
    for entry in line["certificate"]:
        body = json.loads(entry["data"])
        assert body["type"] == "commit" and body["digest"] == line["hash"] and body["seq"] == 3
        cert = out / "genesis" / f"{body['signer']}.pem"
        ok = subprocess.run(["openssl", "verify", "-CAfile", str(out / "genesis" / "ca.pem"), str(cert)],
                            capture_output=True)
        assert ok.returncode == 0
        pub = tmp_path / "pub.pem"
        pub.write_bytes(subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"],
                                       capture_output=True, check=True).stdout)
        (tmp_path / "msg.bin").write_bytes(entry["data"].encode())
        (tmp_path / "sig.bin").write_bytes(bytes.fromhex(entry["sig"]))
        check = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
                                "-in", str(tmp_path / "msg.bin"), "-sigfile", str(tmp_path / "sig.bin")],
                               capture_output=True, text=True)
        assert "Signature Verified Successfully" in check.stdout, check.stderr
        verified.add(body["signer"])
    assert len(verified) >= 5  # quorum of 7 nodes
