"""Checking one exported ledger on its own evidence (docs/audit.md).

A ledger file (``ledgers/node-XX.jsonl``) holds one committed block per line. Each
line is checked as bytes (canonical JSON, docs/ledger.md), as a block (its header's
hash, chain, proposer and size, every transaction's signature, the transaction
root), for its commit certificate (a quorum of distinct consensus members of the
genesis, each signature valid) and in its place in the chain (height, hash link,
timestamps, no transaction twice, and the state root and receipts recomputed by
replaying the applications). The first line that fails is the ledger's fault; the
lines before it are its valid prefix.

Every line whose header and certificate hold is also *evidence* that a quorum
committed that block at that height, wherever it stands and whatever else is
wrong with the line: the auditor compares that evidence across ledgers (safety).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps import REGISTRY as APP_REGISTRY
from consensus.block import Block, BlockHeader, tx_root
from consensus.encoding import canonical, sha256_hex
from consensus.messages import Request, Signed
from consensus.quorum import max_faulty, quorum
from node.checker import ChainChecker
from node.codec import MalformedMessage, decode_envelope
from node.execution import Executor
from node.genesis import membership_from_doc
from node.state import WorldState

from .inputs import MAX_LINE_BYTES, UnreadableFile, loads, read_regular

LINE_FIELDS = ("certificate", "hash", "header", "receipts", "txs")
HEADER_FIELDS = ("chain_id", "height", "prev_hash", "tx_root", "state_root", "view", "proposer", "timestamp")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Fault:
    """Where a ledger first fails: ``line`` counts from 1 (None: the whole file)."""

    line: int | None
    reason: str

    def __str__(self) -> str:
        return self.reason if self.line is None else f"line {self.line}: {self.reason}"

    def to_dict(self) -> dict:
        return {"line": self.line, "reason": self.reason}


@dataclass
class Line:
    """One line of a ledger file, as far as it could be read."""

    number: int
    obj: dict | None = None
    header: BlockHeader | None = None
    hash: str = ""
    problem: str | None = None  # the line is not a well-formed block line
    certified: bool = False  # its certificate is a valid commit certificate for (height, hash)
    certificate_problem: str | None = None
    block: Block | None = None
    block_problem: str | None = None
    block_checked: bool = False


@dataclass
class LedgerCheck:
    """What one ledger file proves."""

    holder: str
    lines: int  # lines in the file
    height: int  # blocks in the valid prefix
    hashes: list[str]  # their hashes
    blocks: list[Block]
    fault: Fault | None
    out_of_order: bool = False  # every line is a valid block, and in height order they form a valid chain
    certified: list[tuple[int, int, str]] = field(default_factory=list)  # (line, height, hash) with a valid certificate
    state: WorldState | None = None  # after the valid prefix, when known

    @property
    def valid(self) -> bool:
        return self.fault is None


class _Float(ValueError):
    pass


def _no_float(text: str):
    raise _Float(f"the number {text} is not an integer")


@dataclass
class _Walk:
    """Following a ledger's lines from the genesis: the valid prefix, and where it ends."""

    hashes: list[str]
    blocks: list[Block]
    fault: Fault | None
    state: WorldState | None


def _hex64(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and _HEX.issuperset(value)


def _int(value, minimum: int) -> bool:
    return type(value) is int and value >= minimum


def _short(obj, width: int = 100) -> str:
    text = canonical(obj).decode()
    return text if len(text) <= width else text[:width - 1] + "…"


class ChainRules:
    """What the genesis says, for checking ledgers of its chain: the members and their
    keys, the consensus members (n, f and the quorum), the block size and the
    applications with their settings. Caches are shared by every ledger checked."""

    def __init__(self, doc: dict, genesis_hash: str, verify: bool = True):
        self.chain_id: str = doc["chain_id"]
        self.genesis_hash = genesis_hash
        self.replicas = tuple(m["id"] for m in doc["members"] if m["role"] == "consensus")
        if not self.replicas:
            raise ValueError("genesis.json names no consensus member")
        self.roles = {m["id"]: m["role"] for m in doc["members"]}
        self.n = len(self.replicas)
        self.f = max_faulty(self.n)
        self.quorum = quorum(self.n)
        self.block_size = doc["consensus"]["block_size"]
        self.membership = membership_from_doc(doc)
        self.checker = ChainChecker(self.membership, genesis_hash, set(self.replicas))
        settings = doc.get("apps") or {}
        self.apps = {name: cls(settings.get(name)) for name, cls in APP_REGISTRY.items()}
        self.directory = {c["id"]: (c["org"], c["role"]) for c in doc["clients"]}
        self.verify = verify  # False: skip signatures and certificates (``citychain query --unchecked``)
        self.memo: dict = {}  # (state root, block hash) -> execution outcome
        self._envelopes: dict[tuple[str, str], Signed | str] = {}
        self._receipt_texts: dict[int, tuple] = {}
        self._tx_roots: dict[tuple[Signed, ...], str] = {}  # the same envelopes (decoded once) -> their root  # id(outcome) -> (outcome, canonical receipts)

    # -- pieces ---------------------------------------------------------------------------

    def envelope(self, obj) -> Signed | str:
        """An attached signed envelope, decoded once per (data, sig); or why it is not one."""
        if not isinstance(obj, dict) or set(obj) != {"data", "sig"}:
            return "not a signed envelope {data, sig}"
        data, sig = obj["data"], obj["sig"]
        if not isinstance(data, str) or not isinstance(sig, str):
            return "data and sig must be strings"
        known = self._envelopes.get((data, sig))
        if known is None:
            try:
                known = decode_envelope(obj, self.chain_id)
            except MalformedMessage as exc:
                known = str(exc)
            self._envelopes[(data, sig)] = known
        return known

    def certificate_problem(self, entries, height: int, digest: str) -> str | None:
        if not isinstance(entries, list) or not entries:
            return "the certificate is empty"
        envs = []
        signers: dict[str, int] = {}
        for i, entry in enumerate(entries, 1):
            env = self.envelope(entry)
            if isinstance(env, str):
                return f"certificate entry {i}: {env}"
            if env.signer in signers:
                return (f"certificate entries {signers[env.signer]} and {i} are both by {env.signer}: a certificate "
                        "is a set of distinct signers")
            signers[env.signer] = i
            envs.append(env)
        if not self.verify:
            return None
        problems = self.checker.check_commits(height, digest, tuple(envs))
        return problems[0] if problems else None

    def parse(self, number: int, text: bytes, complete: bool = True) -> Line:
        """A line's bytes to a header and hash, with its certificate checked; or its problem.

        A line that parses as JSON is evidence of a commit when its header and certificate
        hold, whatever else is wrong with it (not canonical, a field too many): its
        ``problem`` makes it the ledger's fault, but ``certified`` still says what it proves."""
        line = Line(number)
        if not complete:
            line.problem = "cut short: the file ends in the middle of this line (no newline)"
            return line
        if len(text) > MAX_LINE_BYTES:
            line.problem = f"{len(text)} bytes, more than the limit of {MAX_LINE_BYTES} bytes for a line"
            return line
        try:
            string = text.decode("ascii")
        except UnicodeDecodeError:
            line.problem = "not ASCII: a ledger line is canonical JSON, which escapes non-ASCII characters"
            return line
        if not string.strip():
            line.problem = "an empty line: a ledger holds one block per line"
            return line
        try:
            self._parse(line, text, string)
        except RecursionError:  # deeper than the encoder goes, though the parser took it
            line.problem, line.header, line.certified = "not JSON: nested too deeply", None, False
        return line

    def _parse(self, line: Line, text: bytes, string: str) -> None:
        encoding = None
        try:
            obj = loads(string, parse_float=_no_float, parse_constant=_no_float)
        except _Float as exc:
            encoding = f"not canonical JSON: {exc} (integers only)"
            try:
                obj = loads(string, parse_constant=_no_float)  # with its floats, for the evidence it holds
            except ValueError:
                line.problem = encoding
                return
        except ValueError as exc:
            line.problem = "not JSON" + (": nested too deeply" if "nested too deeply" in str(exc) else "")
            return
        if not isinstance(obj, dict):
            line.problem = f"a ledger line is an object of {', '.join(LINE_FIELDS)}; this one is a {type(obj).__name__}"
            return
        shape = None
        if sorted(obj) != list(LINE_FIELDS):
            shape = f"a ledger line is an object of {', '.join(LINE_FIELDS)}; this one has {sorted(obj)}"
        elif encoding is None and canonical(obj) != text:
            encoding = ("not canonical JSON (keys sorted, no white space, ASCII with \\u escapes, "
                        "integers only: docs/ledger.md)")
        header = self._header(line, obj.get("header"))
        if header is None and "certificate" in obj:  # evidence, whatever else is wrong with the line
            line.certificate_problem = self.certificate_problem(obj["certificate"], line.header.height, line.hash)
            line.certified = line.certificate_problem is None
        line.problem = encoding or shape or header or self._body(line, obj)
        if line.problem is None:
            line.obj = obj

    def _header(self, line: Line, h) -> str | None:
        """The header on its own; sets ``line.header`` and ``line.hash`` if it holds."""
        if not isinstance(h, dict):
            return "header is not an object"
        missing = [k for k in HEADER_FIELDS if k not in h]
        if missing:
            return f"header lacks {', '.join(missing)}"
        extra = sorted(set(h) - set(HEADER_FIELDS))
        if extra:
            return f"header has fields a header does not have: {', '.join(extra)}"
        for name in ("prev_hash", "tx_root", "state_root"):
            if not _hex64(h[name]):
                return f"header {name} is not 64 lower-case hex digits"
        for name, minimum in (("height", 1), ("view", 0), ("timestamp", 0)):
            if not _int(h[name], minimum):
                return f"header {name} is not an integer >= {minimum}"
        for name in ("chain_id", "proposer"):
            if not isinstance(h[name], str):
                return f"header {name} is not a string"
        if h["chain_id"] != self.chain_id:
            return f"chain_id {h['chain_id']!r} is not the genesis chain {self.chain_id!r}"
        line.header = BlockHeader(**h)
        line.hash = sha256_hex(canonical(h))
        return None

    @staticmethod
    def _body(line: Line, obj: dict) -> str | None:
        for name in ("txs", "certificate", "receipts"):
            if not isinstance(obj[name], list):
                return f"{name} is not a list"
        if obj["hash"] != line.hash:
            return (f"hash {str(obj['hash'])[:12]}… is not SHA-256 of the header's canonical JSON "
                    f"({line.hash[:12]}…)")
        return None

    def check_block(self, line: Line) -> str | None:
        """The block on its own: proposer, size, transactions, transaction root, certificate."""
        if line.block_checked:
            return line.block_problem
        line.block_checked = True
        line.block_problem = problem = self._block(line)
        return problem

    def _block(self, line: Line) -> str | None:
        h, obj = line.header, line.obj
        primary = self.replicas[h.view % self.n]
        if h.proposer != primary:
            return f"proposer {h.proposer} is not the primary of view {h.view} ({primary})"
        txs = obj["txs"]
        if len(txs) > self.block_size:
            return f"{len(txs)} transactions; a block holds at most {self.block_size} (genesis consensus.block_size)"
        envs: list[Signed] = []
        seen: set[str] = set()
        for i, tx in enumerate(txs, 1):
            env = self.envelope(tx)
            if isinstance(env, str):
                return f"transaction {i}: {env}"
            if type(env.message) is not Request:
                return f"transaction {i} is a {type(env.message).KIND}, not a request"
            if self.verify:
                reason = self.membership.authenticate(env)
                if reason is not None:
                    return f"transaction {i} ({env.digest[:12]}…): {reason}"
            if env.digest in seen:
                return f"transaction {i} ({env.digest[:12]}…) appears twice in the block"
            seen.add(env.digest)
            envs.append(env)
        envs_key = tuple(envs)
        root = self._tx_roots.get(envs_key)
        if root is None:
            root = self._tx_roots[envs_key] = tx_root(envs_key)
        if root != h.tx_root:
            return "tx_root does not match the transactions"
        if line.certificate_problem is not None:
            return f"commit certificate: {line.certificate_problem}"
        if len(obj["receipts"]) != len(txs):
            return f"{len(obj['receipts'])} receipts for {len(txs)} transactions"
        line.block = Block(h, envs_key, line.hash)
        return None

    # -- a whole file ---------------------------------------------------------------------

    def check_file(self, path: Path) -> LedgerCheck:
        holder = Path(path).stem
        try:
            data = read_regular(Path(path))
        except UnreadableFile as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            return LedgerCheck(holder, 0, 0, [], [], Fault(None, f"cannot read the file: {reason}"))
        return self.check_bytes(holder, data)

    def check_bytes(self, holder: str, data: bytes) -> LedgerCheck:
        pieces = data.split(b"\n")
        complete = pieces[-1] == b""
        if complete:
            pieces.pop()
        lines = [self.parse(i, text, complete or i < len(pieces)) for i, text in enumerate(pieces, 1)]
        walk = self.walk(lines)
        check = LedgerCheck(holder, len(lines), len(walk.hashes), walk.hashes, walk.blocks, walk.fault,
                            state=walk.state)
        check.certified = [(ln.number, ln.header.height, ln.hash) for ln in lines if ln.certified]
        if walk.fault is not None and self._misplaced(lines, walk.fault):
            ordered = self.walk(sorted(lines, key=lambda ln: ln.header.height))
            check.out_of_order = ordered.fault is None
        return check

    def _misplaced(self, lines: list[Line], fault: Fault) -> bool:
        """Could the fault be only the order of the lines? (Every line a valid block, and
        their heights exactly 1..N.)"""
        if any(ln.problem is not None or self.check_block(ln) is not None for ln in lines):
            return False
        heights = sorted(ln.header.height for ln in lines)
        return heights == list(range(1, len(lines) + 1)) and fault.line is not None \
            and lines[fault.line - 1].header.height != fault.line

    def walk(self, lines: list[Line]) -> _Walk:
        """Follow the lines as a chain from the genesis, replaying every block."""
        prev, last_ts = self.genesis_hash, -1
        included: dict[str, int] = {}  # tx id -> the height that holds it
        state = WorldState()
        executor = Executor(self.apps, self.directory, state, self.memo)
        hashes: list[str] = []
        blocks: list[Block] = []
        for pos, line in enumerate(lines, 1):
            reason = line.problem or self._place(line, pos, prev, last_ts) or self.check_block(line)
            if reason is None:
                reason = self._replayed(line.block, included)
            if reason is None and line.header.state_root != state.root():
                below = "the empty state's root" if pos == 1 else f"the root replaying blocks 1-{pos - 1} gives"
                reason = f"state_root {line.header.state_root[:12]}… is not {below} ({state.root()[:12]}…)"
            if reason is None:
                reason = self._receipts(line, executor.execute(line.block))
                if reason is not None:
                    state = None  # it ran the block whose receipts disagree
            if reason is not None:
                return _Walk(hashes, blocks, Fault(line.number, reason), state)
            for r in line.block.requests:
                included[r.digest] = pos
            hashes.append(line.hash)
            blocks.append(line.block)
            prev, last_ts = line.hash, line.header.timestamp
        return _Walk(hashes, blocks, None, state)

    @staticmethod
    def _place(line: Line, pos: int, prev: str, last_ts: int) -> str | None:
        h = line.header
        if h.height != pos:
            return f"holds block {h.height} where block {pos} belongs (one block per line, in height order)"
        if h.prev_hash != prev:
            below = "the genesis hash (a ledger of another genesis?)" if pos == 1 else f"the hash of block {pos - 1}"
            return f"prev_hash {h.prev_hash[:12]}… is not {below} ({prev[:12]}…)"
        if h.timestamp <= last_ts:
            return f"timestamp {h.timestamp} is not after block {pos - 1}'s ({last_ts})"
        return None

    @staticmethod
    def _replayed(block: Block, included: dict[str, int]) -> str | None:
        for i, r in enumerate(block.requests, 1):
            if r.digest in included:
                return f"transaction {i} ({r.digest[:12]}…) is already in block {included[r.digest]} (a replay)"
        return None

    def _receipts(self, line: Line, outcome) -> str | None:
        known = self._receipt_texts.get(id(outcome))
        if known is None or known[0] is not outcome:
            known = self._receipt_texts[id(outcome)] = (outcome, canonical([r.to_dict() for r in outcome.receipts]))
        if canonical(line.obj["receipts"]) == known[1]:
            return None
        for i, (got, want) in enumerate(zip(line.obj["receipts"], outcome.receipts), 1):
            want = want.to_dict()
            if canonical(got) != canonical(want):
                return (f"receipt {i} (tx {want['tx'][:12]}…) is not what replaying the block gives: "
                        f"the ledger says {_short(got)}, the replay {_short(want)}")
        return None


__all__ = ["ChainRules", "Fault", "LedgerCheck", "Line"]
