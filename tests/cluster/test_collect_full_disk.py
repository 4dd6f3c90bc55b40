"""``cluster audit --out`` on a full disk: a clear error, and no part of an export left
that would audit as a shorter chain (the collected export is written atomically)."""

from __future__ import annotations

import errno
from types import SimpleNamespace

import pytest

from citychain.cluster import collect as collect_module
from citychain.cluster.control import ClusterError
from citychain.genesis import build_genesis
from citychain.scenario import load_with_overrides


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    genesis = build_genesis(load_with_overrides("taihu", nodes=4))
    genesis.write(tmp_path / "cluster" / "genesis")
    members = ["node-00", "node-01", "node-02", "node-03"]
    monkeypatch.setattr(collect_module, "ledger_lines", lambda _root: ['{"a":1}', '{"a":2}'])
    return SimpleNamespace(genesis_dir=tmp_path / "cluster" / "genesis", node_root=tmp_path / "cluster" / "nodes",
                           directory=tmp_path / "cluster", member_ids=lambda: members)


def test_collect_writes_the_whole_export(cluster, tmp_path):
    heights = collect_module.collect(cluster, tmp_path / "audit-1")
    assert heights == {"node-00": 2, "node-01": 2, "node-02": 2, "node-03": 2}
    assert sorted(p.name for p in (tmp_path / "audit-1" / "ledgers").iterdir()) == [f"{m}.jsonl" for m in heights]
    assert (tmp_path / "audit-1" / "faults.json").exists()


def test_a_full_disk_while_collecting_leaves_nothing_that_looks_complete(cluster, tmp_path, monkeypatch):
    real = collect_module._write_lines
    written = []

    def full_disk(path, lines):
        if len(written) == 2:  # two ledgers whole, the third half written, then the disk is full
            path.write_text(lines[0] + "\n")
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        real(path, lines)

    monkeypatch.setattr(collect_module, "_write_lines", full_disk)
    with pytest.raises(ClusterError, match="No space left on device"):
        collect_module.collect(cluster, tmp_path / "audit-1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster"]  # no audit-1, no partial directory, no lock
