"""Issue 12, user input: every bad input a hostile user tried, through the real CLI.

Each case runs ``python -m citychain ...`` in a subprocess with a timeout and asserts
exit 2 (bad input, never 1 which means "unsafe"), no traceback, and a message that
names the file or option and the field. docs/scenarios.md ("Limits") documents the rules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT_S = 60

SMALL = """\
chain: {id: small, name: Small}
nodes: 4
sites: [{id: a, name: A}, {id: b, name: B}]
organisations: [{id: o1, name: O1, site: a}, {id: o2, name: O2, site: b}]
workload: {transactions: 20, rate_tps: 200}
"""


def _cli(*args: str, cwd: Path, stdin=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "citychain", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env, stdin=stdin)


def _write(tmp: Path, name: str, text: str | bytes) -> str:
    path = tmp / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def _small(tmp: Path, extra: str = "", name: str = "s.yaml") -> str:
    return _write(tmp, name, SMALL + extra)


# Each case: (id, builder(tmp) -> argv, words the message must contain).
CASES = [
    ("binary-scenario", lambda t: ["run", _write(t, "bin.yaml", b"\xff\xfe\x00binary\x80")],
     ["bin.yaml", "UTF-8"]),
    ("binary-base", lambda t: ["run", _write(t, "child.yaml", f"base: {_write(t, 'b.yaml', bytes(range(256)))}\n")],
     ["b.yaml", "UTF-8"]),
    ("inf-float", lambda t: ["run", _small(t, "network: {jitter_ms: .inf}\n")],
     ["s.yaml", "network.jitter_ms", "line 6"]),
    ("nan-float", lambda t: ["run", _small(t, "cpu: {sign_us: .nan}\n")], ["s.yaml", "cpu.sign_us"]),
    ("tiny-rate", lambda t: ["run", _write(t, "r.yaml", SMALL.replace("rate_tps: 200", "rate_tps: 1e-300"))],
     ["r.yaml", "workload", "rate_tps"]),
    ("all-byzantine", lambda t: ["run", _small(t, "allow_byzantine_beyond_f_plus_1: true\nbyzantine:\n" + "".join(
        f"  - {{node: node-{i}, behaviour: silent}}\n" for i in range(4)))], ["s.yaml", "byzantine", "honest"]),
    ("byzantine-beyond-f-plus-1", lambda t: ["run", _small(t, "byzantine:\n" + "".join(
        f"  - {{node: node-{i}, behaviour: silent}}\n" for i in range(3)))],
     ["s.yaml", "byzantine", "f + 1", "allow_byzantine_beyond_f_plus_1"]),
    ("out-under-file", lambda t: ["run", _small(t), "--out", str(Path(_write(t, "afile", "x")) / "sub")],
     ["--out", "afile"]),
    ("out-dev-full", lambda t: ["run", _small(t), "--out", "/dev/full"], ["--out", "/dev/full"]),
    ("run-dev-zero", lambda t: ["run", "/dev/zero"], ["/dev/zero", "regular file"]),
    ("bench-set-inf", lambda t: ["bench", _small(t), "--set", "workload.rate_tps=inf", "--out", str(t / "b")],
     ["workload.rate_tps"]),
    ("bench-nodes-1e11", lambda t: ["bench", _small(t), "--nodes", "4..1e11", "--out", str(t / "b")],
     ["--nodes", "4..1e11"]),
    ("bench-nodes-huge-range", lambda t: ["bench", _small(t), "--nodes", "4..200000000", "--out", str(t / "b")],
     ["--nodes", "256"]),
    ("bench-nodes-empty", lambda t: ["bench", _small(t), "--nodes", "", "--out", str(t / "b")],
     ["--nodes", "no node counts"]),
    ("bench-set-repeated", lambda t: ["bench", _small(t), "--set", "consensus.block_size=10",
                                      "--set", "consensus.block_size=20", "--out", str(t / "b")],
     ["--set", "consensus.block_size", "twice"]),
    ("fault-at-1e300", lambda t: ["run", _small(t, "faults:\n  - {at_ms: 1e300, crash: node-1}\n")],
     ["s.yaml", "faults[0].at_ms", "line 7"]),
    ("huge-file", lambda t: ["run", _write(t, "big.yaml", SMALL + "# " + "x" * (2 << 20) + "\n")],
     ["big.yaml", "MB"]),
    ("huge-list", lambda t: ["run", _small(t, "faults:\n" + "  - {at_ms: 1, heal: true}\n" * 20_000)],
     ["s.yaml", "faults", "at most"]),
    ("view-change-timeout-1", lambda t: ["run", _small(t, "consensus: {view_change_timeout_ms: 1}\n")],
     ["s.yaml", "consensus.view_change_timeout_ms", "line 6"]),
    ("window-negative", lambda t: ["run", _small(t, "random_faults: {crashes: 1, window_ms: [-5000, 100]}\n")],
     ["s.yaml", "random_faults.window_ms"]),
    ("window-reversed", lambda t: ["run", _small(t, "random_faults: {crashes: 1, window_ms: [500, 100]}\n")],
     ["s.yaml", "random_faults.window_ms"]),
    ("duplicate-key", lambda t: ["run", _small(t, "nodes: 5\n")], ["s.yaml", "'nodes'", "line 6", "twice"]),
    ("nodes-override-fault", lambda t: ["run", _write(t, "ten.yaml", SMALL.replace("nodes: 4", "nodes: 10")
                    + "faults:\n  - {at_ms: 10, crash: node-9}\n"), "--nodes", "7"],
     ["ten.yaml", "--nodes 7", "faults[0].crash", "node-9"]),
    ("query-limit-negative", lambda t: ["query", str(t), "records", "--limit", "-1"], ["--limit", "-1"]),
    ("missing-base", lambda t: ["run", _write(t, "child.yaml", "base: nowhere.yaml\n")],
     ["child.yaml", "base", "nowhere.yaml"]),
    ("path-style", lambda t: ["run", _small(t, "network: {latency: {links: [{between: [a, b], ms: -1}]}}\n")],
     ["s.yaml", "network.latency.links[0].ms", "line 6"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_a_clear_message(case, tmp_path):
    _, build, words = case
    proc = _cli(*build(tmp_path), cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    message = proc.stderr
    for word in words:
        assert word in message, (word, message[-2000:])


def test_out_read_only(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = _cli("run", _small(tmp_path), "--out", str(ro / "out"), cwd=tmp_path)
    finally:
        ro.chmod(0o755)
    assert "Traceback" not in proc.stderr and proc.returncode == 2, proc.stderr
    assert "--out" in proc.stderr


@pytest.mark.parametrize("argv", [["run", "partition-heal", "--nodes", "10"],
                                  ["bench", "partition-heal", "--nodes", "24,4", "--seeds", "1"]],
                         ids=["run-n10", "bench-24-4"])
def test_partition_naming_an_empty_site_drops_the_group(argv, tmp_path):
    """A site with no node at this size adds nobody to its group; an empty group is dropped
    (docs/scenarios.md, "Faults"), so a shipped fault scenario runs at any size."""
    if argv[0] == "bench":
        argv = argv + ["--out", str(tmp_path / "b"), "--set", "workload.transactions=50"]
    proc = _cli(*argv, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode in (0, 3), proc.stderr[-2000:]


def test_stdout_dev_full_is_not_a_traceback(tmp_path):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "citychain", "run", _small(tmp_path), "--json"], cwd=tmp_path,
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT_S)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 2, proc.stderr
