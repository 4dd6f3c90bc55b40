"""``cluster audit``: gather every node's ledger into the export layout ``citychain audit`` reads.

The layout is the one ``citychain run --out`` writes (docs/ledger.md): ``genesis/``
and ``ledgers/ID.jsonl``, one line per block exactly as each node stored it. There is
no ``submitted.jsonl`` (a cluster's clients are outside it; ``cluster load`` reports
what they saw), so the audit judges safety and validity; and ``faults.json`` lists no
Byzantine node: every ledger is judged on its own evidence.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from node.sqlite_store import StorageError, ledger_lines

from .control import Cluster, ClusterError


def collect(cluster: Cluster, out: Path) -> dict[str, int]:
    """Write the export to ``out`` (which must not exist or be empty); height per node."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ClusterError(f"{out} is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(cluster.genesis_dir, out / "genesis", dirs_exist_ok=True)
    (out / "ledgers").mkdir()
    heights = {}
    for member in cluster.member_ids():
        try:
            lines = ledger_lines(cluster.node_root / member)
        except StorageError as exc:
            raise ClusterError(str(exc)) from None
        with open(out / "ledgers" / f"{member}.jsonl", "w", encoding="ascii") as f:
            for line in lines:
                f.write(line + "\n")
        heights[member] = len(lines)
    (out / "faults.json").write_text(json.dumps({"byzantine": [], "timeline": [], "healed_at_ns": 0,
                                                 "source": f"cluster {cluster.directory}"}, indent=2) + "\n")
    return heights
