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
checked. Without ``genesis_pin`` (``--genesis-hash``) the audit proves only that the
export is consistent with its own genesis; and a simulated run's keys derive from its
seed, so the report says whether they do (``keys``, from summary.json's seed): then the
signatures prove consistency, not authenticity. Every file is read as hostile input
(``citychain.inputs``: regular files only, bounded sizes). Exit codes (citychain/exits.py): 0 all holds, 1 a safety violation,
4 the export fails a check, 3 a liveness failure; ``ExportError`` (exit 2) when there
is nothing to audit.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consensus.block import Block
from consensus.encoding import sha256_hex
from consensus.messages import Signed
from consensus.quorum import max_faulty, quorum
from node.checker import ChainChecker
from node.genesis import (CRL_FILE, certificate_problems, entry_key, expired_on, genesis_hash, genesis_problems, member_entries,
                          revocations)
from node.identity import derive_key
from node.membership import Membership

from . import exits
from .inputs import MAX_LINE_BYTES, UnreadableFile, loads, read_regular
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
    genesis_trusted: bool = True  # False: the genesis fails its checks (or the pin), so no ledger was read
    genesis_pinned: bool = False  # --genesis-hash was given (and matched, unless genesis_trusted is False)
    keys: str = "unknown"  # derived-from-seed, not-derived, unknown (key_origin)
    seed: int | None = None  # the seed summary.json records
    consensus_members: tuple[str, ...] = ()
    pin_problem: str | None = None  # genesis.json is not the pinned genesis: nothing else was read
    expired: dict[str, str] = field(default_factory=dict)  # member -> the date its certificate expired (before at)

    @property
    def safe(self) -> bool:
        return not self.conflicts

    @property
    def valid(self) -> bool:
        return not self.pin_problem and not self.member_problems and all(r.status not in ("invalid", "out-of-order")
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
        out = [f"genesis: {self.pin_problem}"] if self.pin_problem else []
        out += [f"safety: {c}" for c in self.conflicts]
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
                    + ("" if self.liveness is None else "; every submitted transaction is in it in time")
                    + (f"; but {self.completeness}" if self.completeness else ""))
        return reasons[0] + (f" (+{len(reasons) - 1} more findings)" if len(reasons) > 1 else "")

    @property
    def missing_consensus(self) -> list[str]:
        return [m for m in self.missing if m in self.consensus_members]

    @property
    def completeness(self) -> str:
        """'' when every consensus member's ledger is here; else what their absence leaves open."""
        gone = self.missing_consensus
        if not gone:
            return ""
        return (f"{len(gone)} of {self.n} consensus ledgers are missing ({', '.join(gone[:4])}"
                f"{' …' if len(gone) > 4 else ''}): a fork among them cannot be excluded")

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
            "expired_certificates": self.expired,
            "missing_ledgers": self.missing,
            "missing_consensus_ledgers": self.missing_consensus,
            "genesis_pinned": self.genesis_pinned, "genesis_pin_problem": self.pin_problem,
            "keys": self.keys, "seed": self.seed,
            "liveness": self.liveness,
            "listed_byzantine": self.byzantine,
        }

    def trust_lines(self) -> list[str]:
        """What the signatures prove: the genesis pin, and where the keys come from."""
        pin = ("genesis: pinned by --genesis-hash" if self.genesis_pinned else
               "genesis: not pinned (--genesis-hash): the audit proves only that the export is consistent with its "
               "own genesis.json")
        if self.keys == "derived-from-seed":
            keys = "keys: DERIVED FROM THE SEED: " + KEYS_WARNING.format(seed=self.seed)
        elif self.keys == "not-derived":
            keys = f"keys: not derived from the seed {self.seed} that summary.json records"
        else:
            keys = "keys: unknown whether they derive from a seed (summary.json records none)"
        return [pin, keys]

    def text(self) -> list[str]:
        """The report for people: the verdict first, then the evidence."""
        out = [f"{self.verdict.upper()} (exit {self.exit_code}): {self.reason}"]
        if self.pin_problem:
            return out + ["nothing else in the export was read: its genesis is not the one you trust"]
        if self.chain_id:
            out.append(f"chain {self.chain_id}: {self.n} consensus members (f = {self.f}, quorum {self.quorum}); "
                       f"genesis {self.genesis_hash[:16]}…")
        out += self.trust_lines()
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
        if self.completeness:
            out.append(f"  {self.completeness}")
        for c in self.conflicts[:20]:
            out.append(f"  safety: {c}")
        out.append("member certificates: " + (f"{len(self.member_problems)} problems" if self.member_problems else
                                              f"all chain to the CA and match the genesis, valid on {self.checked_at}"))
        out.extend(f"  {p}" for p in self.member_problems[:20])
        if self.expired:
            out.append("expired certificates (what they signed before stays valid): "
                       + ", ".join(f"{m} on {d}" for m, d in list(self.expired.items())[:10])
                       + (" …" if len(self.expired) > 10 else ""))
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

def audit_export(out_dir: Path, *, at: datetime.datetime | None = None,
                 genesis_pin: str | None = None) -> AuditReport:
    """Audit an exported run in ``out_dir`` (layout: docs/audit.md).

    ``at`` is when member certificates must be valid (default: now, as openssl does);
    ``genesis_pin`` the genesis hash the auditor trusts, obtained out of band (without
    it the audit proves only that the export is consistent with its own genesis.json).
    Returns the report (``report.exit_code``, ``report.reason``, ``report.to_dict()``);
    raises ``ExportError`` if there is nothing to audit.
    """
    out_dir = Path(out_dir)
    at = at or datetime.datetime.now(datetime.timezone.utc)
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir} is not a directory")
    raw, ghash = read_genesis_bytes(out_dir)
    mismatch = check_pin(ghash, genesis_pin)
    if mismatch:  # not the genesis the auditor trusts: nothing in the export is read
        return AuditReport(str(out_dir), "", ghash, 0, 0, 0, f"{at:%Y-%m-%d}", pin_problem=mismatch,
                           genesis_trusted=False, genesis_pinned=True)
    doc = parse_genesis(out_dir, raw)
    ledger_paths = ledger_files(out_dir)
    keys, seed = key_origin(out_dir, doc)
    # A chain may outlive a member's certificate: nodes refused its messages from the
    # expiry on, and what it signed before stays valid, so an expiry is reported, not
    # held against the export (a certificate not yet valid, or the CA's, still is).
    problems = genesis_problems(doc, at, expired_ok=True)
    expired = expired_members(doc, at)
    if genesis_hash(doc) != ghash:
        problems.append("genesis.json is not canonical JSON: the genesis hash is SHA-256 of its exact bytes, "
                        "so a re-encoded file is another genesis (docs/ledger.md)")
    rules = None
    if not problems:
        try:
            rules = ChainRules(doc, ghash)
        except Exception as exc:  # noqa: BLE001 -- settings the apps refuse, whatever they raise: say
            problems.append(f"genesis.json: {exc}")
    pinned = genesis_pin is not None
    if rules is None:  # nothing the genesis vouches for can be trusted: the ledgers are not read
        n = sum(1 for m in doc["members"] if m["role"] == "consensus")
        return AuditReport(str(out_dir), doc["chain_id"], ghash, n, max_faulty(n) if n else 0, quorum(n) if n else 0,
                           f"{at:%Y-%m-%d}", member_problems=problems, genesis_trusted=False, genesis_pinned=pinned,
                           keys=keys, seed=seed, expired=expired)
    problems += exported_certificate_problems(out_dir / "genesis", doc, at)
    faults = _read_faults(out_dir / "faults.json")
    report = AuditReport(str(out_dir), rules.chain_id, ghash, rules.n, rules.f, rules.quorum, f"{at:%Y-%m-%d}",
                         member_problems=problems, byzantine=sorted(faults.get("byzantine", [])) if faults else [],
                         genesis_pinned=pinned, keys=keys, seed=seed, expired=expired)
    checks = {path.stem: rules.check_file(path) for path in ledger_paths}
    submitted = _read_submitted(out_dir / "submitted.jsonl")
    if not any(c.lines for c in checks.values()) and not submitted:
        raise ExportError(f"{out_dir}: no evidence: every ledger is empty and no transaction was submitted")
    judge(report, rules, checks)
    if submitted is not None:
        report.liveness = liveness(checks, report, submitted, faults or {})
    return report


def genesis_path(out_dir: Path) -> Path:
    return Path(out_dir) / "genesis" / "genesis.json"


def read_genesis_bytes(out_dir: Path) -> tuple[bytes, str]:
    """genesis/genesis.json's exact bytes and the genesis hash (their SHA-256), or ExportError."""
    path = genesis_path(out_dir)
    try:
        raw = read_regular(path, MAX_LINE_BYTES)
    except UnreadableFile as exc:
        raise ExportError(str(exc)) from None
    return raw, sha256_hex(raw)


def check_pin(ghash: str, pin: str | None) -> str | None:
    """Why genesis.json is not the genesis the auditor pinned (``--genesis-hash``); None if it is."""
    if pin is None or ghash == pin:
        return None
    return (f"genesis.json's hash {ghash} is not the pinned --genesis-hash {pin}: this export is of another "
            "genesis than the one you trust")


def parse_genesis(out_dir: Path, raw: bytes) -> dict:
    """genesis.json's document with every field the audit reads of the right type, or ExportError."""
    path = genesis_path(out_dir)
    try:
        doc = loads(raw)
        genesis_hash(doc)  # it can be encoded again (not too deep for the encoder)
    except (ValueError, RecursionError) as exc:
        raise ExportError(f"{path}: not JSON ({exc or 'nested too deeply'})") from None
    missing = [k for k in GENESIS_FIELDS if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise ExportError(f"{path}: not a genesis: lacks {', '.join(missing)}")
    problem = genesis_shape_problem(doc)
    if problem:
        raise ExportError(f"{path}: not a genesis: {problem}")
    return doc


def load_genesis(out_dir: Path) -> tuple[dict, str]:
    """genesis/genesis.json and its hash (over its exact bytes), or ExportError."""
    raw, ghash = read_genesis_bytes(out_dir)
    return parse_genesis(out_dir, raw), ghash


def genesis_shape_problem(doc: dict) -> str | None:
    """Why ``doc`` does not have the shape of docs/ledger.md's genesis.json (the types of the
    fields the audit reads); None if it does."""
    for name in ("chain_id", "name", "ca", "state_root"):
        if not isinstance(doc[name], str):
            return f"{name} is not a string"
    if not doc["chain_id"]:
        return "chain_id is empty"
    if not isinstance(doc["organisations"], list) or not all(
            isinstance(o, dict) and all(isinstance(o.get(k), str) for k in ("id", "name", "x25519"))
            for o in doc["organisations"]):
        return "organisations is not a list of {id, name, x25519} strings"
    for name in ("members", "clients"):
        entries = doc[name]
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("id", "org", "role", "cert"))
                for e in entries):
            return f"{name} is not a list of {{id, org, role, cert}} strings"
    consensus = doc["consensus"]
    if not isinstance(consensus, dict) or type(consensus.get("block_size")) is not int \
            or consensus["block_size"] < 1:
        return "consensus.block_size is not an integer >= 1"
    apps = doc["apps"]
    if apps is not None and (not isinstance(apps, dict)
                             or not all(v is None or isinstance(v, dict) for v in apps.values())):
        return "apps is not an object of each app's settings (objects)"
    return None


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
    if not path.exists() and not path.is_symlink():
        return None
    try:
        data = loads(read_regular(path, MAX_LINE_BYTES))
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
    for key in ("healed_at_ns", "liveness_bound_ns", "epoch_ns"):
        if key in faults and (type(faults[key]) is not int or faults[key] < 0):
            raise ExportError(f"faults.json: {key} must be an integer >= 0")
    return faults


def _read_submitted(path: Path) -> list[tuple[str, int]] | None:
    if not path.exists() and not path.is_symlink():
        return None
    out = []
    try:
        data = read_regular(path)
        for i, raw in enumerate(data.splitlines(), 1):
            if len(raw) > MAX_LINE_BYTES:
                raise ValueError(f"line {i}: longer than the limit of {MAX_LINE_BYTES} bytes")
            try:
                entry = loads(raw)
            except ValueError as exc:
                raise ValueError(f"line {i}: not JSON ({exc})") from None
            if not isinstance(entry, dict) or not isinstance(entry.get("tx"), str) \
                    or type(entry.get("at_ns")) is not int:
                raise ValueError(f"line {i}: expected {{\"tx\": id, \"at_ns\": integer}}")
            out.append((entry["tx"], entry["at_ns"]))
    except (OSError, ValueError) as exc:
        raise ExportError(f"submitted.jsonl: cannot read: {exc}") from None
    return out


def key_origin(out_dir: Path, doc: dict) -> tuple[str, int | None]:
    """Whether the genesis keys derive from the seed summary.json records, as a simulated
    run's do (node/identity.py ``derive_key``): ("derived-from-seed", seed), ("not-derived",
    seed), or ("unknown", None) when no seed is recorded. Anyone who knows such a seed can
    sign as any member, so those signatures prove consistency, not authenticity."""
    summary = _read_json(Path(out_dir) / "summary.json", "summary.json")
    seed = summary.get("seed") if summary else None
    if type(seed) is not int or seed < 0:
        return "unknown", None
    try:
        ca_key = x509.load_pem_x509_certificate(doc["ca"].encode()).public_key()
        derived = derive_key(seed, doc["chain_id"], "ca").public_key()
        raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
        same = isinstance(ca_key, Ed25519PublicKey) and ca_key.public_bytes(*raw) == derived.public_bytes(*raw)
    except ValueError:
        same = False
    return ("derived-from-seed" if same else "not-derived"), seed


KEYS_WARNING = ("its keys derive from the seed {seed} (summary.json), as a simulated run's do: anyone who knows the "
                "seed can sign as any member, so its signatures prove that the export is consistent, not who made it")


def _pem_problem(data: bytes) -> tuple[x509.Certificate | None, str | None]:
    """A PEM file holding exactly one certificate and nothing else (as ``openssl x509``
    writes it): the certificate, or why the file is not that."""
    blocks = data.count(b"-----BEGIN ")
    if b"PRIVATE KEY-----" in data:
        return None, "holds a private key; a certificate file holds exactly one CERTIFICATE block and nothing else"
    if blocks != 1:
        return None, (f"holds {blocks} PEM blocks; a certificate file holds exactly one CERTIFICATE block "
                      "and nothing else")
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        return None, "not a PEM certificate"
    if cert.public_bytes(serialization.Encoding.PEM) != data:
        return None, ("holds more than its CERTIFICATE block (text before or after it, or another encoding); "
                      "a certificate file holds exactly one CERTIFICATE block and nothing else")
    return cert, None


def _pem_files(folder: Path) -> tuple[list[str], list[str]]:
    """(every *.pem under ``folder``, as paths relative to it, sorted; problems with the tree)."""
    found, problems = [], []
    for top, dirs, files in os.walk(folder, followlinks=False):
        here = Path(top)
        for d in sorted(dirs):
            if (here / d).is_symlink():
                problems.append(f"genesis/{(here / d).relative_to(folder)}: a symbolic link to a directory; "
                                "the export's certificates are files under genesis/")
        found += [(here / f).relative_to(folder).as_posix() for f in files + dirs if f.endswith(".pem")]
    return sorted(found), problems


def expired_members(doc: dict, at: datetime.datetime) -> dict[str, str]:
    """Member -> the date (UTC) its genesis certificate expired, for those that expired before ``at``."""
    out = {}
    for entry in doc.get("members", []) + doc.get("clients", []):
        try:
            ended = expired_on(x509.load_pem_x509_certificate(entry["cert"].encode()), at)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # genesis_problems names it
        if ended is not None:
            out[entry["id"]] = f"{ended:%Y-%m-%dT%H:%M:%SZ}"
    return out


def exported_certificate_problems(folder: Path, doc: dict, at: datetime.datetime) -> list[str]:
    """Every *.pem under genesis/, by its path: ca.pem is the genesis CA; each member's file
    (node-XX.pem, observer-XX.pem, clients/client-XX.pem: the path its role implies) chains
    to that CA, names the genesis entry's id, organisation and role, holds its key, and is
    valid at ``at``; each file holds exactly one CERTIFICATE block and nothing else; no
    member lacks one and no other *.pem exists."""
    ca = x509.load_pem_x509_certificate(doc["ca"].encode())
    entries = member_entries(doc)
    expected = {(f"clients/{m}.pem" if e["role"] == "client" else f"{m}.pem"): m for m, e in entries.items()}
    found, problems = _pem_files(folder)
    for rel in sorted((set(expected) | {"ca.pem"}) - set(found)):
        problems.append(f"genesis/{rel} is missing")
    for rel in found:
        where = f"genesis/{rel}"
        member_id = expected.get(rel)
        if rel != "ca.pem" and member_id is None:
            stem = Path(rel).stem
            entry = entries.get(stem)
            if entry is None:
                problems.append(f"{where}: {stem} is not a member of the genesis")
            else:
                home = next(p for p, m in expected.items() if m == stem)
                problems.append(f"{where}: a {entry['role']} certificate belongs at genesis/{home}, and only there")
            continue
        try:
            data = read_regular(folder / rel, MAX_LINE_BYTES)
        except UnreadableFile as exc:
            problems.append(f"{where}: {str(exc).removeprefix(str(folder / rel) + ': ')}")
            continue
        cert, problem = _pem_problem(data)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        if rel == "ca.pem":
            if cert != ca:
                problems.append("genesis/ca.pem is not the CA certificate in genesis.json")
            continue
        entry = entries[member_id]
        problems.extend(f"{where}: {p}" for p in certificate_problems(
            cert, ca, member_id, entry["org"], entry["role"], at, key=entry_key(entry), expired_ok=True))
    crl = folder / CRL_FILE
    if crl.exists():  # the CA's revocation list: nodes refuse to start on any other (docs/messages.md)
        try:
            revocations(read_regular(crl, MAX_LINE_BYTES), ca)
        except (UnreadableFile, ValueError) as exc:
            problems.append(f"genesis/{CRL_FILE}: {exc}")
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
    report.consensus_members = rules.replicas


def _longest(checks: dict[str, LedgerCheck]) -> LedgerCheck | None:
    """The ledger with the longest valid chain: its valid prefix (an invalid ledger's
    blocks below its fault are evidence too)."""
    return max(checks.values(), key=lambda c: c.height, default=None)


def liveness(checks: dict[str, LedgerCheck], report: AuditReport, submitted: list[tuple[str, int]],
             faults: dict) -> dict:
    """From the ledgers alone: is every submitted transaction in the longest valid chain,
    and what is the longest wait from its submission (or the last fault's end, if later)
    until the block holding it was proposed (the block's timestamp, calendar time: less
    ``epoch_ns``, the calendar time of the run's time 0, it is on the run's clock)?"""
    longest = _longest(checks)
    epoch = faults.get("epoch_ns", 0)
    proposed = {r.digest: b.header.timestamp - epoch for b in (longest.blocks if longest else []) for r in b.requests}
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
