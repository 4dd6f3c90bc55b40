"""The auditor: what an exported run proves, judged on signed evidence alone (docs/audit.md).

``audit_export(OUT_DIR)`` is the library entry point (``citychain audit`` prints its
report; ``citychain cluster audit`` calls it on ledgers collected from node processes
into the same layout). It trusts the genesis (genesis/genesis.json) and what the
genesis's keys signed, nothing else:

- the genesis: its CA, and every member's certificate issued by that CA, naming the
  member's id, organisation and role, within its validity period; the exported PEM
  files (genesis/ca.pem, genesis/node-XX.pem, ...) must be those certificates;
- each ledger on its own evidence (``citychain.ledgercheck``): canonical lines, hash
  links, heights, transaction signatures, commit certificates, and receipts and state
  roots recomputed by replaying the applications. A ledger that fails is *invalid*
  (with its valid prefix and the exact line of the fault), whoever holds it; one whose
  lines are valid blocks in the wrong order is *out-of-order*; a valid one shorter
  than the longest is *behind*;
- safety from evidence: two valid commit certificates for different blocks at one
  height is a violation, whoever holds them; the ledgers holding either side are
  *conflicting*;
- liveness, from submitted.jsonl (what the clients say they submitted, unsigned) and
  faults.json (the last fault and the bound): every submitted transaction in the
  longest valid chain, proposed within the bound.

faults.json's list of Byzantine nodes annotates the report; it never decides what is
checked. Exit codes (citychain/exits.py): 0 all holds, 1 a safety violation,
4 the export fails a check, 3 a liveness failure; ``ExportError`` (exit 2) when there
is nothing to audit.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from consensus.block import Block
from consensus.messages import Signed
from consensus.quorum import max_faulty, quorum
from node.checker import ChainChecker
from node.genesis import (certificate_problems, entry_key, genesis_hash, genesis_problems, member_entries,
                          read_genesis)
from node.membership import Membership

from . import exits
from .ledgercheck import ChainRules, Fault, LedgerCheck

GENESIS_FIELDS = ("chain_id", "name", "ca", "organisations", "members", "clients", "consensus", "state_root", "apps")


class ExportError(ValueError):
    """The directory cannot be audited: not an export, or no evidence in it (exit 2)."""


@dataclass
class LedgerReport:
    holder: str  # the ledger file's name: node-07, observer-01
    role: str  # the holder's role in the genesis: consensus, observer, or "not a member"
    status: str  # valid, behind, conflicting, out-of-order, invalid
    height: int  # blocks in its valid prefix
    lines: int
    head: str  # hash of the last valid block (the genesis hash if none)
    fault: Fault | None = None
    byzantine: bool = False  # faults.json lists it (an annotation, nothing more)

    def to_dict(self) -> dict:
        return {"role": self.role, "status": self.status, "height": self.height, "lines": self.lines,
                "head": self.head, "fault": self.fault.to_dict() if self.fault else None,
                "listed_byzantine": self.byzantine}

    def describe(self, top: int) -> str:
        label = f"{self.holder} ({self.role}{', listed as Byzantine in faults.json' if self.byzantine else ''})"
        if self.status == "behind":
            return f"{label}: behind: a valid prefix, height {self.height} of {top}"
        if self.status == "out-of-order":
            return f"{label}: out-of-order: {self.fault}; in height order its {self.lines} blocks form a valid chain"
        if self.status == "invalid":
            return f"{label}: invalid: {self.fault}; valid prefix: {self.height} of {self.lines} lines"
        return f"{label}: {self.status} at height {self.height}"


@dataclass
class Conflict:
    """Two or more blocks at one height, each with a valid commit certificate."""

    height: int
    blocks: dict[str, list[tuple[str, int]]]  # block hash -> [(ledger, line)]

    def __str__(self) -> str:
        sides = "; ".join(f"{h[:12]}… in " + ", ".join(f"{who} line {ln}" for who, ln in places[:4])
                          + (f" and {len(places) - 4} more" if len(places) > 4 else "")
                          for h, places in sorted(self.blocks.items()))
        return f"height {self.height}: {len(self.blocks)} different blocks hold valid commit certificates: {sides}"

    def to_dict(self) -> dict:
        return {"height": self.height,
                "blocks": {h: [{"ledger": who, "line": ln} for who, ln in places]
                           for h, places in sorted(self.blocks.items())}}


@dataclass
class AuditReport:
    out_dir: str
    chain_id: str
    genesis_hash: str
    n: int  # consensus members of the genesis
    f: int
    quorum: int
    checked_at: str  # the date certificates' validity was checked at
    ledgers: dict[str, LedgerReport] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    member_problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # consensus or observer members without a ledger file
    head_height: int = 0
    head_hash: str = ""
    liveness: dict | None = None  # None: not judged (no submitted.jsonl)
    byzantine: list[str] = field(default_factory=list)  # faults.json's annotation
    genesis_trusted: bool = True  # False: the genesis fails its checks, so no ledger was read

    @property
    def safe(self) -> bool:
        return not self.conflicts

    @property
    def valid(self) -> bool:
        return not self.member_problems and all(r.status not in ("invalid", "out-of-order")
                                                for r in self.ledgers.values())

    @property
    def live(self) -> bool:
        return self.liveness is None or self.liveness["ok"]

    @property
    def agreement(self) -> bool:
        """Every ledger that checks out is a prefix of one chain."""
        return self.safe and all(r.status in ("valid", "behind") for r in self.ledgers.values()
                                 if r.status not in ("invalid", "out-of-order"))

    @property
    def exit_code(self) -> int:
        return exits.verdict(self.safe, self.live, self.valid)

    @property
    def verdict(self) -> str:
        return exits.NAMES[self.exit_code]

    @property
    def invalid(self) -> dict[str, list[str]]:
        return {name: [str(r.fault)] for name, r in self.ledgers.items() if r.status in ("invalid", "out-of-order")}

    def reasons(self) -> list[str]:
        """Every finding, most serious first, one line each."""
        out = [f"safety: {c}" for c in self.conflicts]
        out += [f"member certificates: {p}" for p in self.member_problems]
        out += [f"{name} {r.status}: {r.fault}" for name, r in self.ledgers.items()
                if r.status in ("invalid", "out-of-order")]
        if not self.live:
            out.append(f"liveness: {self.liveness['reason']}")
        return out

    @property
    def reason(self) -> str:
        """The verdict in one line."""
        reasons = self.reasons()
        if not reasons:
            return (f"{len(self.ledgers)} ledgers check out; the chain is at height {self.head_height}"
                    + ("" if self.liveness is None else "; every submitted transaction is in it in time"))
        return reasons[0] + (f" (+{len(reasons) - 1} more findings)" if len(reasons) > 1 else "")

    @property
    def heights(self) -> dict[str, int]:
        return {name: r.height for name, r in self.ledgers.items()}

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict, "exit_code": self.exit_code, "reason": self.reason, "reasons": self.reasons(),
            "chain_id": self.chain_id, "genesis_hash": self.genesis_hash,
            "n": self.n, "f": self.f, "quorum": self.quorum, "certificates_checked_at": self.checked_at,
            "safe": self.safe, "valid": self.valid, "agreement": self.agreement,
            "head": {"height": self.head_height, "hash": self.head_hash},
            "heights": self.heights,
            "ledgers": {name: r.to_dict() for name, r in self.ledgers.items()},
            "safety_violations": [str(c) for c in self.conflicts],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "invalid_ledgers": self.invalid,
            "member_problems": self.member_problems,
            "missing_ledgers": self.missing,
            "liveness": self.liveness,
            "listed_byzantine": self.byzantine,
        }

    def text(self) -> list[str]:
        """The report for people: the verdict first, then the evidence."""
        out = [f"{self.verdict.upper()} (exit {self.exit_code}): {self.reason}",
               f"chain {self.chain_id}: {self.n} consensus members (f = {self.f}, quorum {self.quorum}); "
               f"genesis {self.genesis_hash[:16]}…"]
        if not self.genesis_trusted:
            return out + ["the genesis fails its checks, so nothing it vouches for was read:"] + \
                [f"  {p}" for p in self.member_problems[:20]]
        counts: dict[str, int] = {}
        for r in self.ledgers.values():
            counts[r.status] = counts.get(r.status, 0) + 1
        out.append(f"ledgers: {len(self.ledgers)} read: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                   + f"; the longest valid chain is at height {self.head_height}"
                   + (f" ({self.head_hash[:16]}…)" if self.head_height else ""))
        for r in list(r for r in self.ledgers.values() if r.status != "valid")[:30]:
            out.append("  " + r.describe(self.head_height))
        if self.missing:
            out.append(f"  no ledger from {', '.join(self.missing[:10])}" + (" …" if len(self.missing) > 10 else ""))
        for c in self.conflicts[:20]:
            out.append(f"  safety: {c}")
        out.append("member certificates: " + (f"{len(self.member_problems)} problems" if self.member_problems else
                                              f"all chain to the CA and match the genesis, valid on {self.checked_at}"))
        out.extend(f"  {p}" for p in self.member_problems[:20])
        if self.liveness is None:
            out.append("liveness: not judged (no submitted.jsonl)")
        else:
            live = self.liveness
            bound = "no bound" if live["bound_ms"] is None else f"bound {live['bound_ms']:.0f} ms"
            out.append(f"liveness: {'ok' if live['ok'] else 'FAILED'}: {live['submitted']} submitted, "
                       f"{live['uncommitted']} not in the chain; the longest wait (from its submission or the last "
                       f"fault at {live['healed_at_ms']:.0f} ms, whichever was later) until proposed: "
                       f"{live['recovery_ms']:.0f} ms, {bound}")
        if self.byzantine:
            out.append(f"faults.json lists as Byzantine: {', '.join(self.byzantine)} (an annotation: their ledgers "
                       "were checked like any other)")
        return out


# -- auditing an export directory ---------------------------------------------------------

def audit_export(out_dir: Path, *, at: datetime.datetime | None = None) -> AuditReport:
    """Audit an exported run in ``out_dir`` (layout: docs/audit.md).

    ``at`` is when member certificates must be valid (default: now, as openssl does).
    Returns the report (``report.exit_code``, ``report.reason``, ``report.to_dict()``);
    raises ``ExportError`` if there is nothing to audit.
    """
    out_dir = Path(out_dir)
    at = at or datetime.datetime.now(datetime.timezone.utc)
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir} is not a directory")
    doc, ghash = load_genesis(out_dir)
    ledger_paths = ledger_files(out_dir)
    problems = genesis_problems(doc, at)
    if genesis_hash(doc) != ghash:
        problems.append("genesis.json is not canonical JSON: the genesis hash is SHA-256 of its exact bytes, "
                        "so a re-encoded file is another genesis (docs/ledger.md)")
    rules = None
    if not problems:
        try:
            rules = ChainRules(doc, ghash)
        except (ValueError, TypeError) as exc:  # app settings the apps refuse, say
            problems.append(f"genesis.json: {exc}")
    if rules is None:  # nothing the genesis vouches for can be trusted: the ledgers are not read
        n = sum(1 for m in doc["members"] if m["role"] == "consensus")
        return AuditReport(str(out_dir), doc["chain_id"], ghash, n, max_faulty(n) if n else 0, quorum(n) if n else 0,
                           f"{at:%Y-%m-%d}", member_problems=problems, genesis_trusted=False)
    problems += exported_certificate_problems(out_dir / "genesis", doc, at)
    faults = _read_faults(out_dir / "faults.json")
    report = AuditReport(str(out_dir), rules.chain_id, ghash, rules.n, rules.f, rules.quorum, f"{at:%Y-%m-%d}",
                         member_problems=problems, byzantine=sorted(faults.get("byzantine", [])) if faults else [])
    checks = {path.stem: rules.check_file(path) for path in ledger_paths}
    submitted = _read_submitted(out_dir / "submitted.jsonl")
    if not any(c.lines for c in checks.values()) and not submitted:
        raise ExportError(f"{out_dir}: no evidence: every ledger is empty and no transaction was submitted")
    judge(report, rules, checks)
    if submitted is not None:
        report.liveness = liveness(checks, report, submitted, faults or {})
    return report


def load_genesis(out_dir: Path) -> tuple[dict, str]:
    """genesis/genesis.json and its hash (over its exact bytes), or ExportError."""
    path = out_dir / "genesis" / "genesis.json"
    try:
        doc, ghash = read_genesis(path)
    except OSError as exc:
        raise ExportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError:
        raise ExportError(f"{path}: not JSON") from None
    missing = [k for k in GENESIS_FIELDS if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise ExportError(f"{path}: not a genesis: lacks {', '.join(missing)}")
    try:
        entries = member_entries(doc)
        for entry in entries.values():
            for key in ("id", "org", "role", "cert"):
                if not isinstance(entry[key], str):
                    raise TypeError(key)
        doc["consensus"]["block_size"]
    except (KeyError, TypeError, AttributeError):
        raise ExportError(f"{path}: not a genesis: members and clients need id, org, role and cert; "
                          "consensus needs block_size") from None
    return doc, ghash


def ledger_files(out_dir: Path) -> list[Path]:
    folder = out_dir / "ledgers"
    if not folder.is_dir():
        raise ExportError(f"{out_dir}: no ledgers/ directory: nothing to audit"
                          + (" (ledgers is not a directory)" if folder.exists() else ""))
    paths = sorted(folder.glob("*.jsonl"))
    if not paths:
        raise ExportError(f"{folder}: no ledger files (*.jsonl): nothing to audit")
    return paths


def _read_json(path: Path, name: str):
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{name}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise ExportError(f"{name}: not a JSON object")
    return data


def _read_faults(path: Path) -> dict | None:
    faults = _read_json(path, "faults.json")
    if faults is None:
        return None
    byzantine = faults.get("byzantine", [])
    if not isinstance(byzantine, list) or not all(isinstance(b, str) for b in byzantine):
        raise ExportError("faults.json: byzantine must be a list of node ids")
    for key in ("healed_at_ns", "liveness_bound_ns"):
        if key in faults and (type(faults[key]) is not int or faults[key] < 0):
            raise ExportError(f"faults.json: {key} must be an integer >= 0")
    return faults


def _read_submitted(path: Path) -> list[tuple[str, int]] | None:
    if not path.exists():
        return None
    out = []
    try:
        with open(path, "rb") as f:
            for i, raw in enumerate(f, 1):
                entry = json.loads(raw)
                if not isinstance(entry, dict) or not isinstance(entry.get("tx"), str) \
                        or type(entry.get("at_ns")) is not int:
                    raise ValueError(f"line {i}: expected {{\"tx\": id, \"at_ns\": integer}}")
                out.append((entry["tx"], entry["at_ns"]))
    except (OSError, ValueError) as exc:
        raise ExportError(f"submitted.jsonl: cannot read: {exc}") from None
    return out


def exported_certificate_problems(folder: Path, doc: dict, at: datetime.datetime) -> list[str]:
    """The PEM files beside genesis.json: ca.pem is the genesis CA; each member's file
    (node-XX.pem, observer-XX.pem, clients/client-XX.pem) chains to that CA, names the
    genesis entry's id, organisation and role, holds its key, and is valid at ``at``;
    no member lacks one and no file names a stranger."""
    problems = []
    ca = x509.load_pem_x509_certificate(doc["ca"].encode())
    try:
        exported_ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
        if exported_ca != ca:
            problems.append("genesis/ca.pem is not the CA certificate in genesis.json")
    except OSError:
        problems.append("genesis/ca.pem is missing")
    except ValueError:
        problems.append("genesis/ca.pem is not a PEM certificate")
    entries = member_entries(doc)
    files = {p.stem: p for p in folder.glob("*.pem") if p.name != "ca.pem"}
    files.update({p.stem: p for p in (folder / "clients").glob("*.pem")})
    for member_id in sorted(set(entries) | set(files)):
        path = files.get(member_id)
        where = "genesis/" + (f"clients/{member_id}.pem" if entries.get(member_id, {}).get("role") == "client"
                              else f"{member_id}.pem")
        if path is None:
            problems.append(f"{where} is missing")
            continue
        where = f"genesis/{path.relative_to(folder)}"
        entry = entries.get(member_id)
        if entry is None:
            problems.append(f"{where}: {member_id} is not a member of the genesis")
            continue
        expected_dir = folder / "clients" if entry["role"] == "client" else folder
        if path.parent != expected_dir:
            problems.append(f"{where}: a {entry['role']} certificate belongs in genesis/"
                            + ("clients/" if entry["role"] == "client" else ""))
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            problems.append(f"{where}: not a PEM certificate")
            continue
        problems.extend(f"{where}: {p}" for p in certificate_problems(
            cert, ca, member_id, entry["org"], entry["role"], at, key=entry_key(entry)))
    return problems


def judge(report: AuditReport, rules: ChainRules, checks: dict[str, LedgerCheck]) -> None:
    """Statuses, conflicts and the head, from each ledger's own evidence."""
    evidence: dict[int, dict[str, list[tuple[str, int]]]] = {}
    for name, check in checks.items():
        for line, height, digest in check.certified:
            evidence.setdefault(height, {}).setdefault(digest, []).append((name, line))
    report.conflicts = [Conflict(h, blocks) for h, blocks in sorted(evidence.items()) if len(blocks) > 1]
    forked = {h for h in (c.height for c in report.conflicts)}
    longest = _longest(checks)
    report.head_height = longest.height if longest else 0
    report.head_hash = longest.hashes[-1] if longest and longest.hashes else rules.genesis_hash
    for name, check in checks.items():
        role = rules.roles.get(name, "not a member")
        if not check.valid:
            status = "out-of-order" if check.out_of_order else "invalid"
        elif any(h in forked for h in range(1, check.height + 1)):
            status = "conflicting"
        elif role == "not a member":
            status = "invalid"
            check.fault = Fault(None, f"{name} is not a consensus or observer member of the genesis")
        elif longest is not None and check.hashes != longest.hashes[:check.height]:
            status = "conflicting"
        else:
            status = "behind" if check.height < report.head_height else "valid"
        report.ledgers[name] = LedgerReport(name, role, status, check.height, check.lines,
                                            check.hashes[-1] if check.hashes else rules.genesis_hash, check.fault,
                                            name in report.byzantine)
    report.missing = [m for m in rules.roles if m not in checks]


def _longest(checks: dict[str, LedgerCheck]) -> LedgerCheck | None:
    """The ledger with the longest valid chain: its valid prefix (an invalid ledger's
    blocks below its fault are evidence too)."""
    return max(checks.values(), key=lambda c: c.height, default=None)


def liveness(checks: dict[str, LedgerCheck], report: AuditReport, submitted: list[tuple[str, int]],
             faults: dict) -> dict:
    """From the ledgers alone: is every submitted transaction in the longest valid chain,
    and what is the longest wait from its submission (or the last fault's end, if later)
    until the block holding it was proposed (the block's timestamp)?"""
    longest = _longest(checks)
    proposed = {r.digest: b.header.timestamp for b in (longest.blocks if longest else []) for r in b.requests}
    heal = faults.get("healed_at_ns", 0)
    bound = faults.get("liveness_bound_ns")
    missing, waited, worst = 0, 0, None
    for tx, at_ns in submitted:
        when = proposed.get(tx)
        if when is None:
            missing += 1
            continue
        wait = when - max(at_ns, heal)
        if worst is None or wait > waited:
            waited, worst = wait, tx
    late = bound is not None and waited > bound
    if missing:
        reason = f"{missing} of {len(submitted)} submitted transactions are not in the longest valid chain"
    elif late:
        reason = f"transaction {worst[:12]}… waited {waited / 1e6:.0f} ms, more than the bound of {bound / 1e6:.0f} ms"
    else:
        reason = ""
    return {"submitted": len(submitted), "uncommitted": missing, "healed_at_ms": heal / 1e6,
            "recovery_ms": round(max(waited, 0) / 1e6, 3), "worst_tx": worst,
            "bound_ms": None if bound is None else bound / 1e6, "ok": not missing and not late, "reason": reason}


# -- the run's own audit (in memory, honest nodes only: the simulator knows who is honest) --

@dataclass
class RunAudit:
    nodes: int
    heights: dict[str, int]
    agreement: bool
    safety_violations: list[str] = field(default_factory=list)
    invalid: dict[str, list[str]] = field(default_factory=dict)  # node -> problems in its own ledger

    @property
    def safe(self) -> bool:
        return not self.safety_violations and not self.invalid


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
                 genesis: str, replicas: set[str]) -> RunAudit:
    checker = ChainChecker(membership, genesis, replicas)
    invalid = {}
    for node, chain in chains.items():
        problems = checker.check(chain)
        if problems:
            invalid[node] = problems
    agreement, violations = compare_chains({n: [b.hash for b, _ in c] for n, c in chains.items()})
    return RunAudit(len(chains), {n: len(c) for n, c in chains.items()}, agreement and not invalid,
                    violations, invalid)


__all__ = ["audit_export", "AuditReport", "LedgerReport", "Conflict", "ExportError", "RunAudit", "audit_chains",
           "compare_chains"]
