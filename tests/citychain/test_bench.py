"""Sweeps: parsing, aggregation, and that a tiny sweep writes every output."""

import csv
import json

import pytest
from click.testing import CliRunner

from citychain.bench.sweep import aggregate, analytic_messages_per_block, parse_counts, parse_set
from citychain.cli import main
from tests.conftest import SCENARIOS


def test_parse_counts():
    assert parse_counts("20,30,40") == [20, 30, 40]
    assert parse_counts("4..16:4") == [4, 8, 12, 16]
    assert parse_counts("7, 4..8:2, 7") == [4, 6, 7, 8]
    for bad in ("", "a", "10..4", "4..8:0", "4..x"):
        with pytest.raises(ValueError):
            parse_counts(bad)


def test_parse_set():
    assert parse_set("consensus.block_size=50,100") == ("consensus.block_size", [50, 100])
    assert parse_set("network.loss=0.01") == ("network.loss", [0.01])
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_set("consensus.block_size")


def test_aggregate_means_and_spread_per_point():
    rows = [{"name": "x", "nodes": 4, "seed": s, "block": b, "tps": t, "agreement": True}
            for s, b, t in [(1, 50, 10.0), (2, 50, 14.0), (1, 100, 20.0), (2, 100, 20.0)]]
    agg = aggregate(rows, ["block"])
    assert [(a["block"], a["tps"], a["tps.sd"], a["seeds"]) for a in agg] == [(100, 20.0, 0.0, 2), (50, 12.0, 2.8284, 2)]
    assert "seed" not in agg[0] and all(a["agreement"] for a in agg)


def test_analytic_count():
    # n = 4, K = 10: 3 pre-prepares + 9 prepares + 12 commits + 1.2 checkpoints
    assert analytic_messages_per_block(4, 10) == pytest.approx(25.2)


def test_a_tiny_sweep_writes_every_output(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4,7", "--seeds", "2",
                                       "--set", "workload.transactions=120", "--set", "consensus.block_size=20,40",
                                       "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    points = json.loads(result.output)["points"]
    assert len(points) == 4 and {(p["nodes"], p["consensus.block_size"]) for p in points} == {
        (4, 20), (4, 40), (7, 20), (7, 40)}
    for name in ("results.csv", "results.json", "report.html", "throughput.png", "latency.png",
                 "messages_per_block.png", "bandwidth_per_node.png"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert sum(r["kind"] == "run" for r in table) == 8 and sum(r["kind"] == "mean" for r in table) == 4
    assert {"name", "succ", "fail", "send_rate_tps", "max_latency_ms", "min_latency_ms", "avg_latency_ms",
            "throughput_tps", "p99_ms", "msgs_per_block.prepare", "cpu_s_per_node", "bandwidth_mbps_per_node",
            "wall_seconds"} <= set(table[0])
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "http" not in html.split("<body>")[1]
    for p in points:  # the normal case's prepares and commits follow PBFT's count exactly
        n = p["nodes"]
        assert p["msgs_per_block.prepare"] == pytest.approx((n - 1) ** 2, rel=0.02)
        assert p["msgs_per_block.commit"] == pytest.approx(n * (n - 1), rel=0.02)


def test_bad_sweeps_are_refused(tmp_path):
    result = CliRunner().invoke(main, ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4..x"])
    assert result.exit_code == 2 and "4..x" in result.output
    result = CliRunner().invoke(main, ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4",
                                       "--set", "consensus.blocksize=5", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no field 'blocksize'" in result.output


def _without_wall_clock(results: dict) -> dict:
    """Everything but the simulator's own wall-clock seconds, which differ between any two runs."""
    return {k: [{c: v for c, v in r.items() if not c.startswith("wall_seconds")} for r in rows]
            if isinstance(rows, list) else rows for k, rows in results.items()}


def test_a_parallel_sweep_gives_the_serial_results(tmp_path):
    outputs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs-{jobs}"
        result = CliRunner().invoke(main, ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4,7", "--seeds", "2",
                                           "--set", "workload.transactions=60", "--out", str(out), "--json",
                                           "--jobs", jobs])
        assert result.exit_code == 0, result.output
        outputs[jobs] = json.loads((out / "results.json").read_text())
    runs = [(r["nodes"], r["seed"]) for r in outputs["2"]["runs"]]
    assert len(runs) == 4 and runs == sorted(runs)  # the plan's order, not the order the runs finished in
    assert _without_wall_clock(outputs["1"]) == _without_wall_clock(outputs["2"])
