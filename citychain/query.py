"""Answering questions about an exported run from a node's own ledger.

The world state is rebuilt by replaying the node's ledger through the apps (with the
settings the genesis records). Before answering, the ledger is checked as the auditor
checks it (``citychain.ledgercheck``): the genesis's certificates, every hash link,
transaction signature and commit certificate, and at every block the state root and
receipts the replay gives. So the answer is exactly the state that node holds, and
that state is what a quorum of the genesis's consensus members committed to.
``checked=False`` skips the signatures and certificates (hash links, state roots and
receipts are still checked), and the answer says so.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from pathlib import Path

from apps import REGISTRY as APP_REGISTRY
from node.genesis import genesis_hash, genesis_problems
from node.state import WorldState

from .audit import ExportError, ledger_files, load_genesis
from .ledgercheck import ChainRules

_MEMBER = re.compile(r"^(?:([a-z]+)-)?0*([0-9]+)$")


class QueryError(ValueError):
    """The question cannot be asked of this directory (exit 2)."""


class UntrustedLedger(QueryError):
    """The genesis or the ledger fails its checks (exit 4, as ``citychain audit``)."""


def pick_ledger(paths: list[Path], node: str | None) -> Path:
    """The ledger of ``node``: 'node-05', 'node-5' or '5' (a consensus node), 'observer-1';
    without ``node``, the first."""
    if not node:
        return paths[0]
    by_stem = {p.stem: p for p in paths}
    if node in by_stem:
        return by_stem[node]
    match = _MEMBER.match(node)
    if match:
        prefix, index = match.group(1) or "node", int(match.group(2))
        for stem, path in by_stem.items():
            found = _MEMBER.match(stem)
            if found and found.group(1) == prefix and int(found.group(2)) == index:
                return path
    raise QueryError(f"no ledger for {node}; ledgers are {', '.join(sorted(by_stem))}")


def replay(out_dir: Path, node: str | None = None, checked: bool = True) -> tuple[str, WorldState, int]:
    """(node, its world state, its height), after checking its ledger."""
    out_dir = Path(out_dir)
    try:
        doc, ghash = load_genesis(out_dir)
        path = pick_ledger(ledger_files(out_dir), node)
    except ExportError as exc:
        raise QueryError(str(exc)) from None
    if checked:
        problems = genesis_problems(doc, datetime.datetime.now(datetime.timezone.utc))
        if genesis_hash(doc) != ghash:
            problems.append("genesis.json is not canonical JSON, so it is not the genesis its ledgers name")
        if problems:
            raise UntrustedLedger(f"the genesis fails its checks: {problems[0]}")
    try:
        rules = ChainRules(doc, ghash, verify=checked)
    except ValueError as exc:
        raise UntrustedLedger(f"the genesis fails its checks: {exc}") from None
    check = rules.check_file(path)
    if check.fault is not None:
        raise UntrustedLedger(f"{path.name}: {check.fault}; its valid prefix is {check.height} blocks. Query "
                              "another node's ledger (--node), or see `citychain audit`")
    return path.stem, check.state, check.height


def query(out_dir: Path, app: str, key: str | None, node: str | None = None, document: Path | None = None,
          limit: int = 50, checked: bool = True) -> dict:
    if app not in APP_REGISTRY:
        raise QueryError(f"unknown app {app!r}; apps are {sorted(APP_REGISTRY)}")
    if limit < 0:
        raise QueryError(f"limit must be >= 0, got {limit}")
    if document is not None:
        if app != "evidence":
            raise QueryError("--file is for the evidence app: it verifies a document against the chain")
        key = "doc/" + hashlib.sha256(Path(document).read_bytes()).hexdigest()
    node_id, state, height = replay(out_dir, node, checked)
    answer = {"node": node_id, "height": height, "state_root": state.root(), "checked": checked, "app": app,
              "key": key}
    full = f"{app}/{key}" if key else f"{app}/"
    value = state.get(full) if key else None
    if value is not None:
        answer["value"] = value
    else:
        matches = sorted(k for k, _ in state.items(full))
        answer["matches"] = [k[len(app) + 1:] for k in matches[:limit]]
        answer["total_matches"] = len(matches)
        if document is not None:
            answer["verified"] = False
            answer["explanation"] = "this document's SHA-256 was never anchored: it is not the anchored original"
    if document is not None and value is not None:
        answer["verified"] = True
    return answer


__all__ = ["query", "replay", "pick_ledger", "QueryError", "UntrustedLedger"]
