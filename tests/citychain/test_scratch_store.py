"""The simulator's scratch history store (node/history.py): in the directory the user
chooses, and gone when the run ends, normally or by SIGINT or SIGTERM; a store left by
SIGKILL is removed by the next run using that directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.history import HistoryStore

ROOT = Path(__file__).resolve().parents[2]


def _stores(directory: Path) -> list[Path]:
    return sorted(directory.glob("citychain-history-*"))


def _start(scratch: Path, transactions: int = 20_000, *extra: str, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    # Long enough to be signalled mid-run: taihu with 20,000 transactions.
    spec = scratch.parent / "long.yaml"
    spec.write_text(f"base: taihu\nworkload:\n  transactions: {transactions}\n")
    return subprocess.Popen([sys.executable, "-m", "citychain.cli", "run", str(spec), "--scratch", str(scratch),
                             "--no-progress", *extra], cwd=ROOT, stdout=stdout,
                            stderr=open(scratch.parent / "stderr.txt", "wb"), stdin=subprocess.DEVNULL,
                            # a shell's background job ignores SIGINT, and a child would inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_store(proc: subprocess.Popen, scratch: Path) -> Path:
    deadline = time.monotonic() + 120
    while not _stores(scratch):
        assert proc.poll() is None and time.monotonic() < deadline, \
            f"no store appeared: {(scratch.parent / 'stderr.txt').read_text()[-2000:]}"
        time.sleep(0.05)
    return _stores(scratch)[0]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signalled_run_removes_its_store(tmp_path, signum):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = _start(scratch)
    try:
        store = _wait_for_store(proc, scratch)
        assert str(proc.pid) in store.name
        time.sleep(1.0)  # into the simulation
        proc.send_signal(signum)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    assert code != 0
    if signum == signal.SIGTERM:
        assert code == -signal.SIGTERM  # dies of the signal, as uncaught
    assert not store.exists() and not _stores(scratch)


def test_a_store_left_by_sigkill_is_removed_by_the_next_one(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = _start(scratch)
    try:
        left = _wait_for_store(proc, scratch)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert left.exists()  # nothing can run on SIGKILL
    mine = HistoryStore("chain", scratch)
    assert _stores(scratch) == [mine.directory]
    mine.close()
    assert not _stores(scratch)


def test_a_run_with_out_keeps_its_store_beside_the_export_and_removes_it(tmp_path):
    from click.testing import CliRunner

    from citychain.cli import main

    seen = []
    real = HistoryStore.__init__

    def spy(self, chain_id, directory=None):
        real(self, chain_id, directory)
        seen.append(self.directory)

    mp = pytest.MonkeyPatch()
    mp.setattr(HistoryStore, "__init__", spy)
    try:
        result = CliRunner().invoke(main, ["run", "normal-4", "--out", str(tmp_path / "out"), "--no-trace"])
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    assert [d.parent for d in seen] == [tmp_path] and not seen[0].exists()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _dead(pid: int) -> bool:
    """Gone, or a zombie (the run reaps its worker only at the end)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_sigterm_to_the_verify_worker_leaves_the_runs_store_alone(tmp_path):
    """The verify worker (citychain/sim/verify.py) is a fork of the run: had it kept the
    run's SIGTERM handler, a SIGTERM to it alone (``pkill``, a supervisor) would remove
    the store the run is still writing. It dies of the signal; the run carries on and
    checks the signatures itself."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = _start(scratch, 8000, "--json", "--verify-worker", stdout=subprocess.PIPE)
    try:
        store = _wait_for_store(proc, scratch)
        deadline = time.monotonic() + 60
        while not _children(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, "no verify worker started"
            time.sleep(0.02)
        worker = _children(proc.pid)[0]
        os.kill(worker, signal.SIGTERM)
        while not _dead(worker) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        assert proc.poll() is None, "the run ended too soon to test this"
        assert store.exists()
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, (tmp_path / "stderr.txt").read_text()[-2000:]
    assert json.loads(out)["committed_tx"] == 8000
    assert not _stores(scratch)
