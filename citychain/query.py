"""Answering questions about an exported run from a node's own ledger.

The world state is rebuilt by replaying the node's ledger through the apps (with the
settings the genesis records). Before answering, the ledger is checked as the auditor
checks it (``citychain.ledgercheck``): the genesis's certificates, every hash link,
transaction signature and commit certificate, and at every block the state root and
receipts the replay gives. So the answer is exactly the state that node holds, and
that state is what a quorum of the genesis's consensus members committed to.
``checked=False`` skips the signatures and certificates (hash links, state roots and
receipts are still checked), and the answer says so.

Only a member's ledger is served, and the answer says whether the genesis keys derive
from the run's seed (``"keys"``: a simulated run's do, so anyone knowing the seed could
have signed what was checked) and whether the genesis was pinned (``genesis_pin``, the
genesis hash the asker trusts).
"""

from __future__ import annotations

import datetime
import hashlib
import re
from pathlib import Path

from apps import REGISTRY as APP_REGISTRY
from node.genesis import genesis_hash, genesis_problems
from node.state import WorldState

from .audit import (KEYS_WARNING, ExportError, check_pin, key_origin, ledger_files, parse_genesis,
                    read_genesis_bytes)
from .inputs import UnreadableFile, read_regular
from .ledgercheck import ChainRules

_MEMBER = re.compile(r"^(?:([a-z]+)-)?0*([0-9]+)$")


class QueryError(ValueError):
    """The question cannot be asked of this directory (exit 2)."""


class UntrustedLedger(QueryError):
    """The genesis or the ledger fails its checks (exit 4, as ``citychain audit``)."""


def pick_ledger(paths: list[Path], node: str | None, members: tuple[str, ...] | None = None) -> Path:
    """The ledger of ``node``: 'node-05', 'node-5' or '5' (a consensus node), 'observer-1';
    without ``node``, the first of ``members`` (in genesis order) that has a ledger.

    Only a member's ledger is served, judged as the audit judges it: a file named after
    a consensus member or an observer of the genesis (``members``). Another file (a copy
    named ``0-mirror.jsonl``, say) is refused with ``UntrustedLedger``."""
    by_stem = {p.stem: p for p in paths}
    if members is not None:
        if not node:
            for member in members:
                if member in by_stem:
                    return by_stem[member]
            raise UntrustedLedger(f"no ledger of a member of the genesis; ledgers are {', '.join(sorted(by_stem))}")
        if node in by_stem and node not in members:
            raise UntrustedLedger(f"{node}.jsonl: {node} is not a consensus or observer member of the genesis, "
                                  "so its ledger is not served")
        by_stem = {m: p for m, p in by_stem.items() if m in members}
    elif not node:
        return paths[0]
    if node in by_stem:
        return by_stem[node]
    match = _MEMBER.match(node)
    if match:
        prefix, index = match.group(1) or "node", int(match.group(2))
        for stem, path in by_stem.items():
            found = _MEMBER.match(stem)
            if found and found.group(1) == prefix and int(found.group(2)) == index:
                return path
    raise QueryError(f"no ledger for {node}; ledgers of members are {', '.join(sorted(by_stem))}")


def replay(out_dir: Path, node: str | None = None, checked: bool = True,
           genesis_pin: str | None = None) -> tuple[str, WorldState, int, tuple[str, int | None]]:
    """(node, its world state, its height, (keys, seed)), after checking its ledger."""
    out_dir = Path(out_dir)
    try:
        raw, ghash = read_genesis_bytes(out_dir)
        mismatch = check_pin(ghash, genesis_pin)
        if mismatch:
            raise UntrustedLedger(mismatch)
        doc = parse_genesis(out_dir, raw)
        members = tuple(m["id"] for m in doc["members"])
        path = pick_ledger(ledger_files(out_dir), node, members)
        keys = key_origin(out_dir, doc)
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
    except Exception as exc:  # noqa: BLE001 -- settings the apps refuse, whatever they raise
        raise UntrustedLedger(f"the genesis fails its checks: {exc}") from None
    check = rules.check_file(path)
    if check.fault is not None:
        raise UntrustedLedger(f"{path.name}: {check.fault}; its valid prefix is {check.height} blocks. Query "
                              "another node's ledger (--node), or see `citychain audit`")
    return path.stem, check.state, check.height, keys


def query(out_dir: Path, app: str, key: str | None, node: str | None = None, document: Path | None = None,
          limit: int = 50, checked: bool = True, genesis_pin: str | None = None) -> dict:
    if app not in APP_REGISTRY:
        raise QueryError(f"unknown app {app!r}; apps are {sorted(APP_REGISTRY)}")
    if limit < 0:
        raise QueryError(f"limit must be >= 0, got {limit}")
    if document is not None:
        if app != "evidence":
            raise QueryError("--file is for the evidence app: it verifies a document against the chain")
        try:
            key = "doc/" + hashlib.sha256(read_regular(Path(document))).hexdigest()
        except UnreadableFile as exc:
            raise QueryError(f"--file {exc}") from None
    node_id, state, height, (keys, seed) = replay(out_dir, node, checked, genesis_pin)
    answer = {"node": node_id, "height": height, "state_root": state.root(), "checked": checked,
              "genesis_pinned": genesis_pin is not None, "keys": keys, "app": app, "key": key}
    if keys == "derived-from-seed":
        answer["keys_note"] = "this export: " + KEYS_WARNING.format(seed=seed)
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
