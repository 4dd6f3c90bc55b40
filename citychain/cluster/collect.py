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
    """Write the export to ``out`` (which must not exist or be empty); height per node.

    Written as ``citychain run --out`` writes (``citychain.export.ExportTarget``): into a
    temporary directory beside ``out``, renamed into place when whole. A full disk or any
    other failed write leaves no ``out`` at all, never a part of an export that would
    audit as a shorter chain (a ClusterError that says why: exit 2)."""
    from ..export import ExportTarget

    out = Path(out)
    if out.is_dir() and any(out.iterdir()):
        raise ClusterError(f"{out} is not empty; choose another --out")
    target = ExportTarget(out)
    heights: dict[str, int] = {}
    try:
        target.prepare()
        target.commit(lambda directory: heights.update(_write(cluster, directory)))
    except OSError as exc:
        raise ClusterError(f"--out {out}: {exc}" if not str(exc).startswith("--out") else str(exc)) from None
    finally:
        target.close()
    return heights


def _write(cluster: Cluster, out: Path) -> dict[str, int]:
    shutil.copytree(cluster.genesis_dir, out / "genesis", dirs_exist_ok=True)
    (out / "ledgers").mkdir()
    heights = {}
    for member in cluster.member_ids():
        try:
            lines = ledger_lines(cluster.node_root / member)
        except StorageError as exc:
            raise ClusterError(str(exc)) from None
        _write_lines(out / "ledgers" / f"{member}.jsonl", lines)
        heights[member] = len(lines)
    (out / "faults.json").write_text(json.dumps({"byzantine": [], "timeline": [], "healed_at_ns": 0,
                                                 "source": f"cluster {cluster.directory}"}, indent=2) + "\n")
    return heights


def _write_lines(path: Path, lines: list[str]) -> None:
    with open(path, "w", encoding="ascii") as f:
        for line in lines:
            f.write(line + "\n")
