"""A full disk (ENOSPC, simulated: no tiny tmpfs here) under `run --out` and `genesis
--out`: a clear error, exit 2, and nothing left that looks like a whole export.
(`cluster audit --out`: tests/cluster/test_collect_full_disk.py.)"""

from __future__ import annotations

import errno

from click.testing import CliRunner

from citychain.cli import main
from citychain.exits import BAD_INPUT
from node.ledger import Ledger

FULL = OSError(errno.ENOSPC, "No space left on device")


def test_run_out_on_a_full_disk_leaves_no_export(tmp_path, monkeypatch):
    real = Ledger.export
    calls = []

    def export(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:  # two ledgers whole, the third cut short by the full disk
            path.write_text('{"half":')
            raise FULL
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(Ledger, "export", export)
    result = CliRunner().invoke(main, ["run", "taihu", "--nodes", "4", "--no-trace", "--out", str(tmp_path / "out")])
    assert result.exit_code == BAD_INPUT, result.output
    assert "No space left on device" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # no out, no partial directory, no lock file


def test_genesis_out_on_a_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    from pathlib import Path

    def full(self, data):
        raise FULL

    monkeypatch.setattr(Path, "write_bytes", full)
    result = CliRunner().invoke(main, ["genesis", "taihu", "--nodes", "4", "--out", str(tmp_path / "g")])
    assert result.exit_code == BAD_INPUT
    assert "error: writing --out" in result.output and "No space left on device" in result.output
    assert not (tmp_path / "g" / "genesis.json").exists()
