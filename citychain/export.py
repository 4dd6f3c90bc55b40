"""Writing a finished run to disk: summary.json, genesis/ and one ledger file per node."""

from __future__ import annotations

import json
from pathlib import Path

from node.ledger import LineCache

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
    # What the auditor needs to judge liveness on its own: what was submitted when,
    # which nodes were Byzantine, and when the last fault healed.
    with open(out / "submitted.jsonl", "w") as f:
        for tx, at in run.metrics.submitted.items():
            f.write(json.dumps({"tx": tx, "at_ns": at}) + "\n")
    (out / "faults.json").write_text(json.dumps({
        "byzantine": sorted(run.plan.byzantine),
        "timeline": [{"at_ns": t, "event": what} for t, what in run.timeline],
        "healed_at_ns": run.plan.last_heal,
        "liveness_bound_ns": int(run.scenario.run.liveness_bound_s * 1e9),
    }, indent=2) + "\n")
