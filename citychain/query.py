"""Answering questions about an exported run from a node's own ledger.

The world state is rebuilt by replaying the node's ledger through the apps (with
the settings the genesis records), checking at every block that the state root
its header names is the one the replay reached, so the answer is exactly the
state that node holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from apps import REGISTRY as APP_REGISTRY
from node.codec import decode_block
from node.execution import Executor
from node.genesis import load_genesis_doc
from node.ledger import read_ledger
from node.state import WorldState


class QueryError(ValueError):
    pass


def replay(out_dir: Path, node: str | None = None) -> tuple[str, WorldState, int]:
    out_dir = Path(out_dir)
    doc = load_genesis_doc(out_dir / "genesis" / "genesis.json")
    ledgers = sorted((out_dir / "ledgers").glob("*.jsonl"))
    if not ledgers:
        raise QueryError(f"{out_dir}: no ledgers/ to read")
    path = next((p for p in ledgers if p.stem == node), None) if node else ledgers[0]
    if path is None:
        raise QueryError(f"{out_dir}: no ledger for {node}; nodes are {[p.stem for p in ledgers]}")
    settings = doc.get("apps", {})
    apps = {name: cls(settings.get(name)) for name, cls in APP_REGISTRY.items()}
    directory = {c["id"]: (c["org"], c["role"]) for c in doc["clients"]}
    state = WorldState()
    executor = Executor(apps, directory, state)
    height = 0
    for line in read_ledger(path):
        block = decode_block(line, doc["chain_id"])
        if block.header.state_root != state.root():
            raise QueryError(f"{path.name}: block {block.height} names state root {block.header.state_root[:12]}, "
                             f"but replaying the blocks below gives {state.root()[:12]}")
        executor.execute(block)
        height = block.height
    return path.stem, state, height


def query(out_dir: Path, app: str, key: str | None, node: str | None = None, document: Path | None = None,
          limit: int = 50) -> dict:
    if app not in APP_REGISTRY:
        raise QueryError(f"unknown app {app!r}; apps are {sorted(APP_REGISTRY)}")
    if document is not None:
        if app != "evidence":
            raise QueryError("--file is for the evidence app: it verifies a document against the chain")
        key = "doc/" + hashlib.sha256(Path(document).read_bytes()).hexdigest()
    node_id, state, height = replay(out_dir, node)
    answer = {"node": node_id, "height": height, "state_root": state.root(), "app": app, "key": key}
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


__all__ = ["query", "replay", "QueryError"]
