"""Writing a finished run to disk: summary.json, genesis/ and one ledger file per node."""

from __future__ import annotations

import json
from pathlib import Path

from .ledger import LineCache
from .sim.run import SimRun


def write_run(out: Path, run: SimRun, summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    run.genesis.write(out / "genesis")
    ledgers = out / "ledgers"
    ledgers.mkdir(exist_ok=True)
    cache = LineCache()
    for node_id, node in run.nodes.items():
        node.ledger.export(ledgers / f"{node_id}.jsonl", cache)
