"""The auditor: checks ledgers on their own and against each other.

For every node: the hash chain from the genesis, each header's hash and
transaction root, every transaction's client signature, and every commit
certificate (a quorum of distinct consensus members' valid COMMIT signatures
for exactly this block). Across nodes: no two hold different blocks at the same
height (safety), and whether all hold the same chain (agreement).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from consensus.block import Block
from consensus.messages import Signed
from node.checker import ChainChecker
from node.codec import MalformedMessage, decode_block, decode_envelope
from node.genesis import genesis_hash, load_genesis_doc, membership_from_doc
from node.ledger import read_ledger
from node.membership import Membership


@dataclass
class AuditReport:
    nodes: int
    heights: dict[str, int]
    agreement: bool
    safety_violations: list[str] = field(default_factory=list)
    invalid: dict[str, list[str]] = field(default_factory=dict)  # node -> problems in its own ledger
    liveness: dict | None = None

    @property
    def safe(self) -> bool:
        return not self.safety_violations and not self.invalid

    def to_dict(self) -> dict:
        return {"nodes": self.nodes, "agreement": self.agreement, "safe": self.safe,
                "safety_violations": self.safety_violations, "invalid_ledgers": self.invalid,
                "heights": self.heights, "liveness": self.liveness}


def compare_chains(chains: dict[str, list[str]]) -> tuple[bool, list[str]]:
    """(agreement, safety violations) over each node's list of block hashes."""
    violations = []
    longest = max((len(c) for c in chains.values()), default=0)
    for height in range(1, longest + 1):
        seen: dict[str, list[str]] = {}
        for node, hashes in chains.items():
            if len(hashes) >= height:
                seen.setdefault(hashes[height - 1], []).append(node)
        if len(seen) > 1:
            groups = "; ".join(f"{h[:12]} at {', '.join(ns)}" for h, ns in sorted(seen.items()))
            violations.append(f"height {height}: honest nodes hold different blocks: {groups}")
    distinct = {tuple(c) for c in chains.values()}
    return len(distinct) <= 1 and not violations, violations


def audit_chains(chains: dict[str, list[tuple[Block, tuple[Signed, ...]]]], membership: Membership,
                 genesis: str, replicas: set[str]) -> AuditReport:
    checker = ChainChecker(membership, genesis, replicas)
    invalid = {}
    for node, chain in chains.items():
        problems = checker.check(chain)
        if problems:
            invalid[node] = problems
    agreement, violations = compare_chains({n: [b.hash for b, _ in c] for n, c in chains.items()})
    return AuditReport(len(chains), {n: len(c) for n, c in chains.items()}, agreement and not invalid,
                       violations, invalid)


def audit_directory(out_dir: Path) -> AuditReport:
    """Audit an exported run: OUT_DIR/genesis/genesis.json and OUT_DIR/ledgers/*.jsonl."""
    out_dir = Path(out_dir)
    doc = load_genesis_doc(out_dir / "genesis" / "genesis.json")
    membership = membership_from_doc(doc)
    chain_id = doc["chain_id"]
    replicas = {m["id"] for m in doc["members"] if m["role"] == "consensus"}
    faults_path = out_dir / "faults.json"
    faults = json.loads(faults_path.read_text()) if faults_path.exists() else {}
    byzantine = set(faults.get("byzantine", []))
    chains = {}
    unreadable = {}
    for path in sorted((out_dir / "ledgers").glob("*.jsonl")):
        if path.stem in byzantine:
            continue  # a Byzantine node's ledger may hold anything
        chain = []
        try:
            for line in read_ledger(path):
                block = decode_block(line, chain_id)
                cert = tuple(decode_envelope(c, chain_id) for c in line["certificate"])
                chain.append((block, cert))
        except (MalformedMessage, KeyError, TypeError, ValueError) as exc:
            unreadable[path.stem] = [f"line {len(chain) + 1}: {exc}"]
        chains[path.stem] = chain
    report = audit_chains(chains, membership, genesis_hash(doc), replicas)
    for node, problems in unreadable.items():
        report.invalid.setdefault(node, []).extend(problems)
        report.agreement = False
    submitted_path = out_dir / "submitted.jsonl"
    if submitted_path.exists() and chains:
        report.liveness = _liveness(chains, submitted_path, faults)
    return report


def _liveness(chains, submitted_path: Path, faults: dict) -> dict:
    """From the ledgers alone: is every submitted transaction in the chain, and what is
    the longest wait from its submission (or the last fault's end, if later) until the
    block holding it was proposed (block timestamp)?"""
    longest = max(chains.values(), key=len)
    proposed = {r.digest: block.header.timestamp for block, _ in longest for r in block.requests}
    heal = faults.get("healed_at_ns", 0)
    missing, waited = 0, 0
    with open(submitted_path) as f:
        for line in f:
            entry = json.loads(line)
            at = proposed.get(entry["tx"])
            if at is None:
                missing += 1
            else:
                waited = max(waited, at - max(entry["at_ns"], heal))
    bound = faults.get("liveness_bound_ns")
    return {"healed_at_ms": heal / 1e6, "uncommitted": missing, "recovery_ms": round(waited / 1e6, 3),
            "bound_ms": None if bound is None else bound / 1e6,
            "ok": missing == 0 and (bound is None or waited <= bound)}
