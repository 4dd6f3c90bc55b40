"""The auditor against tampered exports: for each, its verdict, exit code and one-line reason.

Issue 10's cases first (each once passed with exit 0, or was misreported), then others.
Every tampered copy starts from one honest export of a small Taihu chain with an
observer; a line is rewritten as canonical JSON unless the case is about encoding.
"""

import datetime
import hashlib
import json
import re
import shutil

import pytest
import yaml
from click.testing import CliRunner

from citychain.audit import ExportError, audit_export
from citychain.cli import main
from citychain.exits import BAD_INPUT, INVALID, NOT_LIVE, OK, UNSAFE
from consensus.block import BlockHeader, tx_root
from consensus.merkle import merkle_root
from consensus.messages import Commit
from consensus.quorum import quorum
from node.identity import derive_key
from node.signing import Signer

NODES = 8  # node-07 exists; f = 2, quorum 6
SEED = 2026  # taihu.yaml's: member keys derive from it


def canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@pytest.fixture(scope="module")
def export(taihu_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit")
    scenario = folder / "small.yaml"
    scenario.write_text(yaml.safe_dump({"base": str(taihu_path), "nodes": NODES, "observers": 1,
                                        "workload": {"transactions": 300}}))
    out = folder / "out"
    result = CliRunner().invoke(main, ["run", str(scenario), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def copy(export, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(export, dst)
    return dst


def ledger(out, node="node-02"):
    return out / "ledgers" / f"{node}.jsonl"


def read_lines(out, node="node-02"):
    return [json.loads(x) for x in ledger(out, node).read_text().splitlines()]


def write_lines(out, lines, node="node-02"):
    ledger(out, node).write_text("".join(canon(x) + "\n" for x in lines))


def edit(out, fn, node="node-02"):
    lines = read_lines(out, node)
    fn(lines)
    write_lines(out, lines, node)


def audit(out, *args):
    """(exit code, JSON report, first line of the text report)."""
    as_json = CliRunner().invoke(main, ["audit", str(out), "--json", *args])
    text = CliRunner().invoke(main, ["audit", str(out), *args])
    assert as_json.exit_code == text.exit_code
    report = json.loads(as_json.output) if as_json.exit_code != BAD_INPUT else None
    return as_json.exit_code, report, text.output.splitlines()[0] if text.output else ""


def assert_verdict(out, code, verdict, reason, *args):
    got, report, first = audit(out, *args)
    assert got == code, first
    assert report["verdict"] == verdict and report["exit_code"] == code
    assert reason in report["reason"], report["reason"]
    assert first == f"{verdict.upper()} (exit {code}): {report['reason']}"  # the text report's first line
    return report


def set_receipt_result(lines):
    receipt = next(r for r in lines[3]["receipts"] if r["ok"] and r.get("result"))
    receipt["result"] = {"status": "forged"}


# -- issue 10's cases --------------------------------------------------------------------

def test_the_honest_export_passes(export):
    report = assert_verdict(export, OK, "ok", f"{NODES + 1} ledgers check out")
    assert report["agreement"] and report["safe"] and report["valid"]
    assert {r["status"] for r in report["ledgers"].values()} == {"valid"}
    assert report["ledgers"]["observer-00"]["role"] == "observer"
    assert report["liveness"]["ok"] and report["liveness"]["submitted"] == 300
    assert (report["n"], report["f"], report["quorum"]) == (NODES, 2, quorum(NODES))


def test_a_receipt_edited_on_one_node(copy):
    edit(copy, set_receipt_result)
    report = assert_verdict(copy, INVALID, "invalid", "node-02 invalid: line 4: receipt")
    assert "is not what replaying the block gives" in report["reason"]
    assert report["ledgers"]["node-02"]["height"] == 3 and report["ledgers"]["node-02"]["fault"]["line"] == 4
    assert report["safe"]  # a receipt is not covered by the block hash: no conflicting block


def test_a_receipt_edited_on_every_node(copy):
    for path in sorted((copy / "ledgers").iterdir()):
        edit(copy, set_receipt_result, path.stem)
    report = assert_verdict(copy, INVALID, "invalid", "node-00 invalid: line 4: receipt")
    assert len(report["invalid_ledgers"]) == NODES + 1


def test_a_member_certificate_replaced_by_a_self_signed_one_with_the_same_key(copy):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = copy / "genesis" / "node-07.pem"
    real = x509.load_pem_x509_certificate(pem.read_bytes())
    key = derive_key(SEED, "taihu", "node-07")
    forged = (x509.CertificateBuilder().subject_name(real.subject).issuer_name(real.subject)
              .public_key(key.public_key()).serial_number(real.serial_number)
              .not_valid_before(real.not_valid_before_utc).not_valid_after(real.not_valid_after_utc)
              .sign(key, None))
    pem.write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    assert_verdict(copy, INVALID, "invalid", "member certificates: genesis/node-07.pem: not issued by the chain's CA")


def test_a_tampered_ledger_is_not_hidden_by_calling_its_node_byzantine(copy):
    edit(copy, set_receipt_result)
    faults = json.loads((copy / "faults.json").read_text())
    faults["byzantine"] = ["node-02"]
    (copy / "faults.json").write_text(json.dumps(faults))
    report = assert_verdict(copy, INVALID, "invalid", "node-02 invalid: line 4: receipt")
    assert report["ledgers"]["node-02"]["listed_byzantine"] is True


def test_calling_every_node_byzantine_changes_nothing(copy):
    faults = json.loads((copy / "faults.json").read_text())
    faults["byzantine"] = [f"node-{i:02d}" for i in range(NODES)]
    (copy / "faults.json").write_text(json.dumps(faults))
    report = assert_verdict(copy, OK, "ok", f"{NODES + 1} ledgers check out")
    assert len(report["listed_byzantine"]) == NODES
    edit(copy, set_receipt_result, "node-05")
    assert_verdict(copy, INVALID, "invalid", "node-05 invalid: line 4")


def test_a_tampered_byzantine_nodes_ledger(taihu_path, tmp_path):
    """A run with a real Byzantine node: its own ledger is checked like any other."""
    scenario = tmp_path / "byz.yaml"
    scenario.write_text(yaml.safe_dump({"base": str(taihu_path), "nodes": 7, "workload": {"transactions": 100},
                                        "byzantine": [{"node": "node-3", "behaviour": "conflicting-votes"}]}))
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["run", str(scenario), "--out", str(out)]).exit_code == OK
    report = assert_verdict(out, OK, "ok", "7 ledgers check out")
    assert report["listed_byzantine"] == ["node-03"]
    edit(out, lambda lines: lines[0]["txs"].pop(), "node-03")
    assert_verdict(out, INVALID, "invalid", "node-03 invalid: line 1: tx_root does not match the transactions")


def test_a_line_rewritten_as_non_canonical_json(copy):
    lines = ledger(copy).read_text().splitlines()
    lines[5] = json.dumps(json.loads(lines[5]))  # same content, with spaces
    ledger(copy).write_text("\n".join(lines) + "\n")
    report = assert_verdict(copy, INVALID, "invalid", "node-02 invalid: line 6: not canonical JSON")
    assert report["ledgers"]["node-02"]["height"] == 5


def test_no_ledgers_at_all(copy):
    shutil.rmtree(copy / "ledgers")
    code, _, _ = audit(copy)
    assert code == BAD_INPUT
    with pytest.raises(ExportError, match="no ledgers/ directory: nothing to audit"):
        audit_export(copy)


def test_an_empty_ledgers_directory(copy):
    shutil.rmtree(copy / "ledgers")
    (copy / "ledgers").mkdir()
    result = CliRunner().invoke(main, ["audit", str(copy)])
    assert result.exit_code == BAD_INPUT and "no ledger files (*.jsonl): nothing to audit" in result.output


def test_ledgers_is_a_file(copy):
    shutil.rmtree(copy / "ledgers")
    (copy / "ledgers").write_text("")
    result = CliRunner().invoke(main, ["audit", str(copy)])
    assert result.exit_code == BAD_INPUT and "ledgers is not a directory" in result.output


def test_every_ledger_zero_bytes(copy):
    for path in (copy / "ledgers").iterdir():
        path.write_bytes(b"")
    # The clients' log says 300 transactions were submitted: none is in any ledger.
    assert_verdict(copy, NOT_LIVE, "not-live",
                   "liveness: 300 of 300 submitted transactions are not in the longest valid chain")
    (copy / "submitted.jsonl").unlink()  # and without it, there is no evidence of anything
    result = CliRunner().invoke(main, ["audit", str(copy)])
    assert result.exit_code == BAD_INPUT
    assert "no evidence: every ledger is empty and no transaction was submitted" in result.output


def test_two_swapped_blocks_are_out_of_order_not_a_safety_violation(copy):
    def swap(lines):
        lines[2], lines[3] = lines[3], lines[2]

    edit(copy, swap)
    report = assert_verdict(copy, INVALID, "invalid",
                            "node-02 out-of-order: line 3: holds block 4 where block 3 belongs")
    assert report["safe"] and report["safety_violations"] == []
    assert report["ledgers"]["node-02"]["status"] == "out-of-order"


def test_a_ledger_cut_mid_line_keeps_its_valid_prefix(copy):
    data = ledger(copy).read_bytes()
    lines = data.split(b"\n")
    cut = sum(len(x) + 1 for x in lines[:7]) + len(lines[7]) // 2  # in the middle of line 8
    ledger(copy).write_bytes(data[:cut])
    report = assert_verdict(copy, INVALID, "invalid", "node-02 invalid: line 8: cut short")
    entry = report["ledgers"]["node-02"]
    assert entry["height"] == 7 and entry["lines"] == 8 and entry["fault"]["line"] == 8


def test_a_header_missing_a_field(copy):
    def drop(lines):
        del lines[4]["header"]["timestamp"]

    edit(copy, drop)
    assert_verdict(copy, INVALID, "invalid", "node-02 invalid: line 5: header lacks timestamp")


def test_a_ledger_that_is_only_shorter_is_behind(copy):
    lines = read_lines(copy)
    write_lines(copy, lines[:-4])
    report = assert_verdict(copy, OK, "ok", "ledgers check out")
    assert report["agreement"] is True
    assert report["ledgers"]["node-02"]["status"] == "behind"
    assert report["ledgers"]["node-02"]["height"] == len(lines) - 4 == report["head"]["height"] - 4


# -- query ------------------------------------------------------------------------------

def query(out, *args):
    return CliRunner().invoke(main, ["query", str(out), "licences", "licence/", *args])  # .stdout: the answer


def test_query_refuses_a_ledger_whose_certificates_are_invalid(copy):
    edit(copy, lambda lines: lines[2].update(certificate=lines[2]["certificate"][:3]))
    result = query(copy, "--node", "2")
    assert result.exit_code == INVALID
    assert "node-02.jsonl: line 3: commit certificate: certificate has 3 distinct signers, a quorum is 6" \
        in result.output
    unchecked = query(copy, "--node", "2", "--unchecked")  # told not to check, it answers, and says so
    assert unchecked.exit_code == OK and '"checked": false' in unchecked.output
    assert query(copy, "--node", "node-3").exit_code == OK


def test_query_refuses_ledgers_of_another_runs_genesis(copy, taihu_path, tmp_path):
    other = tmp_path / "other"
    assert CliRunner().invoke(main, ["genesis", str(taihu_path), "--out", str(other), "--nodes", str(NODES),
                                     "--seed", "2"]).exit_code == 0
    shutil.rmtree(copy / "genesis")
    shutil.copytree(other, copy / "genesis")
    result = query(copy)
    assert result.exit_code == INVALID
    assert "node-00.jsonl: line 1: prev_hash" in result.output and "another genesis" in result.output
    assert_verdict(copy, INVALID, "invalid", "node-00 invalid: line 1: prev_hash")


def test_query_names_nodes_by_number_and_rejects_a_negative_limit(export):
    for name in ("5", "node-5", "node-05"):
        result = query(export, "--node", name, "--limit", "1")
        assert result.exit_code == OK and json.loads(result.output)["node"] == "node-05"
    assert json.loads(query(export, "--node", "observer-0").stdout)["node"] == "observer-00"
    assert json.loads(query(export).stdout)["checked"] is True
    result = query(export, "--limit", "-1")
    assert result.exit_code == BAD_INPUT and "-1 is not in the range" in result.output
    result = query(export, "--node", "9")
    assert result.exit_code == BAD_INPUT and "no ledger for 9" in result.output


# -- safety from evidence ---------------------------------------------------------------

def certify(header: dict, signers, view=0) -> list:
    digest = BlockHeader(**header).compute_hash()
    return [Signer(s, derive_key(SEED, "taihu", s), "taihu").sign(Commit(view, header["height"], digest)).to_dict()
            for s in signers]


def conflicting_last_block(lines, signers):
    """The last block again, empty and a nanosecond later, committed by ``signers``."""
    header = dict(lines[-1]["header"], timestamp=lines[-1]["header"]["timestamp"] + 1,
                  tx_root=tx_root(()))
    lines[-1] = {"certificate": certify(header, signers), "hash": BlockHeader(**header).compute_hash(),
                 "header": header, "receipts": [], "txs": []}


def test_two_valid_certificates_for_one_height_are_a_safety_violation_whoever_holds_them(copy):
    q = quorum(NODES)
    edit(copy, lambda lines: conflicting_last_block(lines, [f"node-{i:02d}" for i in range(q)]), "observer-00")
    report = assert_verdict(copy, UNSAFE, "unsafe", "different blocks hold valid commit certificates")
    height = report["head"]["height"]
    assert report["reason"].startswith(f"safety: height {height}: 2 different blocks")
    assert report["ledgers"]["observer-00"]["status"] == "conflicting"
    assert {r["status"] for n, r in report["ledgers"].items() if n != "observer-00"} == {"conflicting"}
    assert not report["agreement"]
    [conflict] = report["conflicts"]
    assert [place["ledger"] for place in conflict["blocks"][read_lines(copy, "observer-00")[-1]["hash"]]] \
        == ["observer-00"]


def test_a_forged_block_without_a_quorum_is_invalid_not_a_fork(copy):
    q = quorum(NODES)
    edit(copy, lambda lines: conflicting_last_block(lines, [f"node-{i:02d}" for i in range(q - 1)]))
    report = assert_verdict(copy, INVALID, "invalid", "distinct signers, a quorum is 6")
    assert report["safe"]


def test_a_changed_header_is_invalid_not_a_fork(copy):
    def fork(lines):
        lines[0]["header"]["timestamp"] += 1
        lines[0]["hash"] = BlockHeader(**lines[0]["header"]).compute_hash()

    edit(copy, fork)
    report = assert_verdict(copy, INVALID, "invalid", "node-02 invalid: line 1: commit certificate: certificate "
                                                      "holds a message from node-")
    assert report["safe"]


# -- more tampering ---------------------------------------------------------------------

@pytest.mark.parametrize("case, reason", [
    ("rewritten-tx", "node-02 invalid: line 2: transaction 1 "),
    ("hash-not-updated", "node-02 invalid: line 1: hash "),
    ("duplicate-signer", "certificate entries 1 and 6 are both by node-0"),
    ("duplicate-entry-beside-a-quorum", "certificate entries 1 and 7 are both by node-0"),
    ("observer-signs", "certificate signature by observer-00: unauthorised-role"),
    ("mixed-views", "certificate mixes COMMITs of different views"),
    ("state-root", "node-02 invalid: line 1: commit certificate"),
    ("repeated-line", "node-02 invalid: line 4: holds block 3 where block 4 belongs"),
    ("float", "node-02 invalid: line 1: not canonical JSON: the number 1.0 is not an integer"),
    ("blank-line", "node-02 invalid: line 3: an empty line"),
    ("crlf", "node-02 invalid: line 1: not canonical JSON"),
    ("extra-field", "node-02 invalid: line 1: a ledger line is an object of certificate, hash, header, receipts, txs"),
    ("wrong-proposer", "node-02 invalid: line 1: proposer node-01 is not the primary of view 0 (node-00)"),
    ("receipt-dropped", "node-02 invalid: line 1: "),
    ("no-final-newline", "node-02 invalid: line "),
])
def test_tampered_ledger(copy, case, reason):
    raw = ledger(copy).read_text()
    lines = read_lines(copy)
    first = lines[0]
    if case == "rewritten-tx":
        tx = json.loads(lines[1]["txs"][0]["data"])
        tx["args"]["forged"] = "yes"
        lines[1]["txs"][0]["data"] = canon(tx)
    elif case == "hash-not-updated":
        first["header"]["timestamp"] += 1
    elif case == "duplicate-signer":
        first["certificate"] = first["certificate"][:5] + [first["certificate"][0]]
    elif case == "duplicate-entry-beside-a-quorum":  # a quorum of distinct signers, and one of them again: not a set
        first["certificate"] = first["certificate"][:6] + [first["certificate"][0]]
    elif case == "observer-signs":
        first["certificate"] = first["certificate"][:-1] + [
            Signer("observer-00", derive_key(SEED, "taihu", "observer-00"), "taihu")
            .sign(Commit(0, 1, first["hash"])).to_dict()]
    elif case == "mixed-views":
        signers = [json.loads(c["data"])["signer"] for c in first["certificate"]]
        first["certificate"] = certify(first["header"], signers[:-1]) + certify(first["header"], signers[-1:], view=1)
    elif case == "state-root":
        first["header"]["state_root"] = "00" * 32
        first["hash"] = BlockHeader(**first["header"]).compute_hash()
    elif case == "repeated-line":
        lines.insert(3, lines[2])
    elif case == "receipt-dropped":
        first["receipts"].pop()
    elif case == "wrong-proposer":
        first["header"]["proposer"] = "node-01"
        first["hash"] = BlockHeader(**first["header"]).compute_hash()  # (a quorum's certificate for it would be a fork)
    if case in ("float", "blank-line", "crlf", "extra-field", "no-final-newline"):
        text = raw.splitlines()
        if case == "float":
            text[0] = text[0].replace('"height":1,', '"height":1.0,')
        elif case == "blank-line":
            text.insert(2, "")
        elif case == "crlf":
            text[0] += "\r"
        elif case == "extra-field":
            text[0] = text[0][:-1] + ',"zz":1}'
        body = "\n".join(text) + ("" if case == "no-final-newline" else "\n")
        ledger(copy).write_text(body)
    else:
        write_lines(copy, lines)
    report = assert_verdict(copy, INVALID, "invalid", reason)
    if case == "no-final-newline":
        assert report["ledgers"]["node-02"]["fault"]["line"] == len(lines)
        assert "cut short" in report["reason"]


def test_genesis_json_edited(copy):
    path = copy / "genesis" / "genesis.json"
    doc = json.loads(path.read_bytes())
    doc["consensus"]["block_size"] += 1
    path.write_text(canon(doc))
    assert_verdict(copy, INVALID, "invalid", "node-00 invalid: line 1: prev_hash")
    path.write_text(json.dumps(doc, indent=2))  # pretty-printed: not the exact bytes the chain names
    assert_verdict(copy, INVALID, "invalid", "member certificates: genesis.json is not canonical JSON")


def test_ca_pem_replaced_and_member_pem_missing_or_a_stranger(copy, taihu_path, tmp_path):
    other = tmp_path / "other"
    CliRunner().invoke(main, ["genesis", str(taihu_path), "--out", str(other), "--seed", "2"])
    ca = (copy / "genesis" / "ca.pem").read_bytes()
    shutil.copy(other / "ca.pem", copy / "genesis" / "ca.pem")
    assert_verdict(copy, INVALID, "invalid", "genesis/ca.pem is not the CA certificate in genesis.json")
    (copy / "genesis" / "ca.pem").write_bytes(ca)
    (copy / "genesis" / "node-03.pem").unlink()
    assert_verdict(copy, INVALID, "invalid", "genesis/node-03.pem is missing")
    shutil.copy(other / "node-03.pem", copy / "genesis" / "node-03.pem")
    report = assert_verdict(copy, INVALID, "invalid", "genesis/node-03.pem: not issued by the chain's CA")
    assert any("its public key is not the one in genesis.json" in p for p in report["member_problems"])


def test_certificates_outside_their_validity(export):
    assert_verdict(export, INVALID, "invalid", "not valid on 2040-01-01 (valid 2026-01-01 to 2036-01-01)",
                   "--at", "2040-01-01")
    assert audit(export, "--at", "2030-06-01")[0] == OK


def test_a_ledger_of_a_stranger(copy):
    shutil.copy(ledger(copy, "node-01"), ledger(copy, "node-99"))
    report = assert_verdict(copy, INVALID, "invalid", "node-99 invalid: node-99 is not a consensus or observer member")
    assert report["ledgers"]["node-99"]["role"] == "not a member"


def test_missing_ledgers_are_noted_not_failed(copy):
    ledger(copy, "node-06").unlink()
    ledger(copy, "observer-00").unlink()
    report = assert_verdict(copy, OK, "ok", f"{NODES - 1} ledgers check out")
    assert report["missing_ledgers"] == ["node-06", "observer-00"]
    # ... but the one-line verdict says what their absence leaves open
    assert report["reason"].endswith(f"but 1 of {NODES} consensus ledgers are missing (node-06): a fork among them "
                                     "cannot be excluded")
    assert report["missing_consensus_ledgers"] == ["node-06"]


def test_liveness_is_judged_on_valid_evidence_only(copy):
    for path in (copy / "ledgers").iterdir():
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        if path.stem == "node-00":
            set_receipt_result(lines)  # the one full ledger is invalid
        else:
            lines = lines[:2]
        path.write_text("".join(canon(x) + "\n" for x in lines))
    report = assert_verdict(copy, INVALID, "invalid", "node-00 invalid")
    assert not report["liveness"]["ok"] and report["liveness"]["uncommitted"] > 0


def test_malformed_submitted_log_is_bad_input(copy):
    (copy / "submitted.jsonl").write_text('{"tx": "ab", "at_ns": 1.5}\n')
    result = CliRunner().invoke(main, ["audit", str(copy)])
    assert result.exit_code == BAD_INPUT and "submitted.jsonl: cannot read: line 1" in result.output


def test_the_library_call(export):
    report = audit_export(export, at=datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc))
    assert report.exit_code == OK and report.verdict == "ok" and report.safe and report.valid and report.live
    assert report.to_dict()["certificates_checked_at"] == "2030-01-01"
    genesis = (export / "genesis" / "genesis.json").read_bytes()
    assert report.genesis_hash == hashlib.sha256(genesis).hexdigest()  # over the file's exact bytes
    first = json.loads(ledger(export, "node-00").read_text().splitlines()[0])
    assert first["header"]["prev_hash"] == report.genesis_hash


# -- an untampered export audits to the run's own exit code -------------------------------

@pytest.mark.parametrize("name, code", [("fork-f-plus-1", UNSAFE), ("mixed-byzantine-20", OK), ("primary-crash", OK)])
def test_the_audit_of_an_export_agrees_with_the_run(name, code, tmp_path):
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["run", name, "--out", str(out)]).exit_code == code
    report = json.loads(CliRunner().invoke(main, ["audit", str(out), "--json"]).output)
    assert report["exit_code"] == code, report["reason"]
    if code == UNSAFE:  # the colluders' and the honest nodes' certificates: both sides are evidence
        assert report["reason"].startswith("safety: height 1: 2 different blocks hold valid commit certificates")
        assert report["valid"]  # every ledger checks out on its own: the fork is in the evidence, not the files
    else:
        assert {r["status"] for r in report["ledgers"].values()} <= {"valid", "behind"}


def test_malformed_faults_json_is_bad_input(copy):
    (copy / "faults.json").write_text('{"byzantine": "node-02"}')
    result = CliRunner().invoke(main, ["audit", str(copy)])
    assert result.exit_code == BAD_INPUT and "faults.json: byzantine must be a list of node ids" in result.output


def test_docs_name_every_field_of_the_export_and_the_report(export):
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "audit.md").read_text()
    report = audit_export(export).to_dict()
    names = set(report) | set(report["ledgers"]["node-00"]) | set(report["liveness"]) | {"fault"}
    names |= set(json.loads((export / "faults.json").read_text()))
    names |= set(json.loads((export / "submitted.jsonl").read_text().splitlines()[0]))
    missing = sorted(n for n in names if not re.search(rf"`{n}`|\b{n}\b", text))
    assert missing == []
    for status in ("valid", "behind", "conflicting", "out-of-order", "invalid"):
        assert f"| `{status}` |" in text


@pytest.mark.parametrize("case, reason", [
    ("state-root", "state_root 000000000000… is not the root replaying blocks 1-"),
    ("replay", "transaction 1 ("),
])
def test_a_certified_block_that_breaks_the_chain_is_invalid_and_a_fork(copy, case, reason):
    """Only more than f faulty members can certify such a block: the ledger that holds it
    is invalid at that line, and the certificate is still evidence of a fork."""
    def forge(lines):
        header = dict(lines[-1]["header"], timestamp=lines[-1]["header"]["timestamp"] + 1)
        txs = []
        if case == "state-root":
            header["state_root"] = "00" * 32
        else:
            txs = [lines[0]["txs"][0]]
        header["tx_root"] = merkle_root([t["data"].encode() for t in txs]).hex()
        lines[-1] = {"certificate": certify(header, [f"node-{i:02d}" for i in range(quorum(NODES))]),
                     "hash": BlockHeader(**header).compute_hash(), "header": header,
                     "receipts": [{"ok": True, "tx": "00" * 32}] * len(txs), "txs": txs}

    edit(copy, forge)
    report = assert_verdict(copy, UNSAFE, "unsafe", "different blocks hold valid commit certificates")
    entry = report["ledgers"]["node-02"]
    assert entry["status"] == "invalid" and reason in entry["fault"]["reason"]
    if case == "replay":
        assert "is already in block 1 (a replay)" in entry["fault"]["reason"]


# -- what the signatures prove: keys derived from the seed, and the genesis pin ------------

def test_a_simulated_exports_keys_are_reported_as_derived_from_its_seed(copy):
    """Anyone who knows the seed can forge blocks that check out: the report says so."""
    code, report, _ = audit(copy)
    assert code == OK and report["keys"] == "derived-from-seed" and report["seed"] == SEED
    text = CliRunner().invoke(main, ["audit", str(copy)]).output
    assert "keys: DERIVED FROM THE SEED: its keys derive from the seed 2026" in text
    assert "anyone who knows the seed can sign as any member" in text
    assert "genesis: not pinned (--genesis-hash)" in text
    answer = json.loads(query(copy).stdout)
    assert answer["keys"] == "derived-from-seed" and "anyone who knows the seed" in answer["keys_note"]
    summary = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps(dict(summary, seed=SEED + 1)))
    assert audit(copy)[1]["keys"] == "not-derived"
    (copy / "summary.json").unlink()
    assert audit(copy)[1]["keys"] == "unknown"


def test_the_genesis_can_be_pinned(copy, taihu_path, tmp_path):
    ghash = hashlib.sha256((copy / "genesis" / "genesis.json").read_bytes()).hexdigest()
    code, report, _ = audit(copy, "--genesis-hash", ghash)
    assert code == OK and report["genesis_pinned"] is True
    assert audit(copy, "--genesis-hash", ghash.upper())[0] == OK
    assert query(copy, "--genesis-hash", ghash).exit_code == OK
    # Another run's genesis, with its ledgers: consistent with itself, and not the pinned one.
    other = tmp_path / "other"
    assert CliRunner().invoke(main, ["run", "taihu", "--nodes", "4", "--seed", "3", "--out", str(other)]).exit_code == OK
    report = assert_verdict(other, INVALID, "invalid", "genesis: genesis.json's hash ", "--genesis-hash", ghash)
    assert f"is not the pinned --genesis-hash {ghash}" in report["reason"] and report["genesis_pinned"]
    assert audit(other)[0] == OK  # unpinned, it proves only its own consistency
    result = query(other, "--genesis-hash", ghash)
    assert result.exit_code == INVALID and "is not the pinned --genesis-hash" in result.output
    result = CliRunner().invoke(main, ["audit", str(copy), "--genesis-hash", "abc"])
    assert result.exit_code == BAD_INPUT and "64 hex digits" in result.output


# -- the exported PEM files, every one by its path ------------------------------------------

def other_pem(tmp_path, taihu_path, name):
    other = tmp_path / "other"
    if not other.exists():
        CliRunner().invoke(main, ["genesis", str(taihu_path), "--out", str(other), "--seed", "2"])
    return (other / name).read_bytes()


@pytest.mark.parametrize("case, reason", [
    ("client-pem-at-the-top", "genesis/client-00.pem: a client certificate belongs at genesis/clients/client-00.pem"),
    ("in-a-subfolder", "genesis/extra/node-03.pem: a consensus certificate belongs at genesis/node-03.pem"),
    ("a-stranger-in-a-subfolder", "genesis/extra/deep/mallory.pem: mallory is not a member of the genesis"),
    ("junk-before", "genesis/node-03.pem: holds more than its CERTIFICATE block"),
    ("a-second-certificate-after", "genesis/node-03.pem: holds 2 PEM blocks"),
    ("a-private-key", "genesis/node-03.pem: holds a private key"),
    ("ca-with-junk-after", "genesis/ca.pem: holds more than its CERTIFICATE block"),
])
def test_every_pem_file_is_checked_by_its_path(copy, taihu_path, tmp_path, case, reason):
    from cryptography.hazmat.primitives import serialization

    g = copy / "genesis"
    real = (g / "node-03.pem").read_bytes()
    if case == "client-pem-at-the-top":  # once hidden: keyed by stem, clients/client-00.pem overwrote it
        (g / "client-00.pem").write_bytes(other_pem(tmp_path, taihu_path, "clients/client-00.pem"))
    elif case == "in-a-subfolder":
        (g / "extra").mkdir()
        (g / "extra" / "node-03.pem").write_bytes(other_pem(tmp_path, taihu_path, "node-03.pem"))
    elif case == "a-stranger-in-a-subfolder":
        (g / "extra" / "deep").mkdir(parents=True)
        (g / "extra" / "deep" / "mallory.pem").write_bytes(real)
    elif case == "junk-before":
        (g / "node-03.pem").write_bytes(b"trust me\n" + real)
    elif case == "a-second-certificate-after":
        (g / "node-03.pem").write_bytes(real + other_pem(tmp_path, taihu_path, "node-03.pem"))
    elif case == "a-private-key":
        key = derive_key(SEED, "taihu", "node-03").private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        (g / "node-03.pem").write_bytes(real + key)
    elif case == "ca-with-junk-after":
        (g / "ca.pem").write_bytes((g / "ca.pem").read_bytes() + b"# comment\n")
    assert_verdict(copy, INVALID, "invalid", f"member certificates: {reason}")


# -- a fork is evidence, canonical line or not ----------------------------------------------

@pytest.mark.parametrize("respell", ["space", "float", "extra-field"])
def test_a_fork_does_not_hide_behind_a_non_canonical_line(copy, respell):
    q = quorum(NODES)
    edit(copy, lambda lines: conflicting_last_block(lines, [f"node-{i:02d}" for i in range(q)]), "observer-00")
    text = ledger(copy, "observer-00").read_text().splitlines()
    if respell == "space":
        text[-1] = text[-1].replace('{"certificate":', '{"certificate": ', 1)
    elif respell == "float":
        text[-1] = text[-1].replace('"receipts":[]', '"receipts":[1.5]', 1)
    else:
        text[-1] = text[-1][:-1] + ',"zz":1}'
    ledger(copy, "observer-00").write_text("\n".join(text) + "\n")
    report = assert_verdict(copy, UNSAFE, "unsafe", "different blocks hold valid commit certificates")
    assert report["ledgers"]["observer-00"]["status"] == "invalid"
    assert any(f"observer-00 line {len(text)}" in v for v in report["safety_violations"])


# -- signatures have one spelling -------------------------------------------------------------

@pytest.mark.parametrize("where, respell, reason", [
    ("tx", str.upper, "line 1: transaction 1: malformed: sig is not 128 lower-case hex digits"),
    ("tx", lambda s: s[:10] + " " + s[10:], "line 1: transaction 1: malformed: sig is not 128 lower-case hex"),
    ("certificate", str.upper, "line 1: commit certificate: certificate entry 1: malformed: sig is not 128"),
])
def test_a_signature_spelled_another_way_is_refused(copy, where, respell, reason):
    def respelled(lines):
        entry = lines[0]["txs" if where == "tx" else "certificate"][0]
        entry["sig"] = respell(entry["sig"])

    edit(copy, respelled)
    assert_verdict(copy, INVALID, "invalid", f"node-02 invalid: {reason}")


# -- query serves members' ledgers only --------------------------------------------------------

def test_query_serves_only_a_members_ledger(copy):
    edit(copy, set_receipt_result, "node-01")
    shutil.copy(ledger(copy, "node-01"), copy / "ledgers" / "0-mirror.jsonl")  # first in sorted order
    answer = json.loads(query(copy).stdout)
    assert answer["node"] == "node-00"  # the first member in genesis order, not the first file
    result = query(copy, "--node", "0-mirror")
    assert result.exit_code == INVALID and "0-mirror is not a consensus or observer member" in result.output
    for path in (copy / "ledgers").glob("node-*.jsonl"):
        path.unlink()
    ledger(copy, "observer-00").unlink()
    result = query(copy)
    assert result.exit_code == INVALID and "no ledger of a member of the genesis" in result.output


# -- hostile inputs: never a hang or a traceback, always exit 2 or 4 with one line ------------

def _deep(n=200_000) -> str:
    return "[" * n + "]" * n


def _genesis(out, fn):
    path = out / "genesis" / "genesis.json"
    doc = json.loads(path.read_bytes())
    fn(doc)
    path.write_text(canon(doc))


def _replace(path, make):
    path.unlink()
    make(path)


def _fifo(path):
    import os
    os.mkfifo(path)


def _deep_tx_line(out):
    lines = read_lines(out)
    lines[0]["txs"][0]["data"] = _deep()
    write_lines(out, lines)


HOSTILE = {
    "ledger-fifo": lambda o: _replace(ledger(o), _fifo),
    "ledger-dev-zero": lambda o: _replace(ledger(o), lambda p: p.symlink_to("/dev/zero")),
    "ledger-symlink-loop": lambda o: _replace(ledger(o), lambda p: p.symlink_to(p)),
    "ledger-directory": lambda o: _replace(ledger(o), lambda p: p.mkdir()),
    "ledger-deep-line": lambda o: ledger(o).write_text(_deep() + "\n"),
    "ledger-deep-tx-data": _deep_tx_line,
    "genesis-fifo": lambda o: _replace(o / "genesis" / "genesis.json", _fifo),
    "genesis-dev-zero": lambda o: _replace(o / "genesis" / "genesis.json", lambda p: p.symlink_to("/dev/zero")),
    "genesis-deep": lambda o: (o / "genesis" / "genesis.json").write_text(_deep()),
    "genesis-deep-in-apps": lambda o: (o / "genesis" / "genesis.json").write_text(
        (o / "genesis" / "genesis.json").read_text().replace('"apps":{', '"apps":{"x":' + "[" * 5000
                                                             + "]" * 5000 + ",", 1)),
    "genesis-a-list": lambda o: (o / "genesis" / "genesis.json").write_text("[]"),
    "genesis-ca-a-number": lambda o: _genesis(o, lambda d: d.update(ca=5)),
    "genesis-block-size-a-string": lambda o: _genesis(o, lambda d: d["consensus"].update(block_size="x")),
    "genesis-consensus-a-list": lambda o: _genesis(o, lambda d: d.update(consensus=[])),
    "genesis-members-a-string": lambda o: _genesis(o, lambda d: d.update(members="x")),
    "genesis-cert-a-number": lambda o: _genesis(o, lambda d: d["members"][0].update(cert=5)),
    "genesis-organisations-a-number": lambda o: _genesis(o, lambda d: d.update(organisations=5)),
    "genesis-apps-a-number": lambda o: _genesis(o, lambda d: d.update(apps=5)),
    "genesis-app-settings-wrong": lambda o: _genesis(o, lambda d: d["apps"].update(licences={"issuers": 5})),
    "genesis-state-root-a-list": lambda o: _genesis(o, lambda d: d.update(state_root=[])),
    "submitted-fifo": lambda o: _replace(o / "submitted.jsonl", _fifo),
    "submitted-dev-zero": lambda o: _replace(o / "submitted.jsonl", lambda p: p.symlink_to("/dev/zero")),
    "submitted-deep": lambda o: (o / "submitted.jsonl").write_text(_deep() + "\n"),
    "faults-fifo": lambda o: _replace(o / "faults.json", _fifo),
    "faults-deep": lambda o: (o / "faults.json").write_text(_deep()),
    "summary-fifo": lambda o: _replace(o / "summary.json", _fifo),
    "summary-deep": lambda o: (o / "summary.json").write_text(_deep()),
    "ca-pem-fifo": lambda o: _replace(o / "genesis" / "ca.pem", _fifo),
    "node-pem-dev-zero": lambda o: _replace(o / "genesis" / "node-01.pem", lambda p: p.symlink_to("/dev/zero")),
    "pem-directory": lambda o: (o / "genesis" / "x.pem").mkdir(),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_inputs_end_in_exit_2_or_4_with_one_line(copy, case):
    import subprocess
    import sys

    HOSTILE[case](copy)
    # query reads the genesis, summary.json and the one ledger it serves (node-02's here), nothing else
    reads = case.startswith(("ledger", "genesis", "summary"))
    for args in (["audit", str(copy)], ["query", str(copy), "licences", "licence/", "--node", "2"]):
        try:
            result = subprocess.run([sys.executable, "-m", "citychain.cli", *args], capture_output=True, text=True,
                                    timeout=120, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{args[0]} hangs on {case}")
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        allowed = (BAD_INPUT, INVALID) if args[0] == "audit" or reads else (OK, BAD_INPUT, INVALID)
        assert result.returncode in allowed, (args[0], result.returncode, result.stderr[-500:])
        if result.returncode == BAD_INPUT:
            assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
        elif result.returncode == OK:
            assert json.loads(result.stdout)["node"] == "node-02"
        elif args[0] == "audit":
            assert result.stdout.startswith("INVALID (exit 4): ")
        else:
            assert result.stderr.startswith("error: ")


def test_files_and_lines_are_read_up_to_a_limit(copy, monkeypatch, tmp_path):
    from citychain import inputs, ledgercheck

    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    assert inputs.read_regular(big, 11) == b"x" * 11
    with pytest.raises(inputs.UnreadableFile, match="11 bytes, more than the limit of 10 bytes"):
        inputs.read_regular(big, 10)
    longest = max(len(x) for x in ledger(copy).read_bytes().splitlines())
    monkeypatch.setattr(ledgercheck, "MAX_LINE_BYTES", longest - 1)
    report = audit_export(copy)
    assert report.exit_code == INVALID
    assert f"more than the limit of {longest - 1} bytes for a line" in report.reason
