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


# --- capacity search (issue 13) ------------------------------------------------------

def _fake_probe(capacity: int, calls: list):
    """A chain that keeps up with any offered rate up to ``capacity`` tx/s and no more."""
    def probe(data, nodes, seed, rate, criterion, name):
        calls.append(rate)
        holds = rate <= capacity
        return {"name": name, "nodes": nodes, "seed": seed, "offered_tps": rate, "throughput_tps": float(min(rate, capacity)),
                "p50_ms": 10.0, "p95_ms": 20.0, "wall_seconds": 0.0, "holds": holds, "why_not": "" if holds else "slow"}
    return probe


@pytest.mark.parametrize("start, capacity", [(1000, 3700), (1000, 640), (50, 50), (1000, 1000), (8, 0)])
def test_the_capacity_search_is_monotone_and_brackets_the_capacity(monkeypatch, start, capacity):
    from citychain.bench import capacity as cap

    calls: list[int] = []
    monkeypatch.setattr(cap, "probe", _fake_probe(capacity, calls))
    criterion = cap.Criterion(tolerance=0.05)
    probes = cap.search({}, 4, 1, start, criterion, "x")
    assert [p["step"] for p in probes] == list(range(1, len(probes) + 1)) and len(calls) == len(set(calls))
    held = [p["offered_tps"] for p in probes if p["holds"]]
    failed = [p["offered_tps"] for p in probes if not p["holds"]]
    assert not held or not failed or max(held) < min(failed)  # every rate that held is below every one that failed
    # the bracket only narrows: each probe after the first lies strictly inside the previous bracket
    lo, hi = 0, float("inf")
    for p in probes:
        assert lo < p["offered_tps"] < hi or p["step"] <= 2 or lo == 0 or hi == float("inf")
        if p["holds"]:
            lo = max(lo, p["offered_tps"])
        else:
            hi = min(hi, p["offered_tps"])
    best = cap.summarize_search(probes)
    if capacity >= 1:
        assert best["capacity_offered_tps"] <= capacity < best["first_failing_offered_tps"]
        assert best["first_failing_offered_tps"] - best["capacity_offered_tps"] <= max(1, 0.05 * best["capacity_offered_tps"])
    else:
        assert best["capacity_tps"] == 0 and not held


def test_a_tiny_capacity_search_respects_its_criterion(tmp_path):
    out = tmp_path / "cap"
    result = CliRunner().invoke(main, ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4,7", "--capacity",
                                       "--set", "workload.transactions=40", "--window-s", "0.05", "--tolerance", "0.3",
                                       "--latency-bound-ms", "500", "--jobs", "1", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["capacity"]
    assert [s["nodes"] for s in summary] == [4, 7]
    for name in ("capacity.csv", "capacity.json", "capacity.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "capacity.csv") as f:
        table = list(csv.DictReader(f))
    for s in summary:
        probes = [r for r in table if r["kind"] == "probe" and int(r["nodes"]) == s["nodes"]]
        assert len(probes) == s["probes"] >= 2
        for p in probes:  # the verdict is the documented criterion, recomputed from the row
            ok = (float(p["reply_rate_tps"]) >= 0.95 * float(p["send_rate_tps"])
                  and int(p["submitted"]) - int(p["fail_uncommitted"]) >= 0.95 * int(p["submitted"])
                  and float(p["p95_ms"]) <= 500)
            assert (p["holds"] == "True") == ok, p
            assert int(p["submitted"]) == max(40, -(-int(p["offered_tps"]) * 5 // 100))  # >= 0.05 s of load
        held = [int(p["offered_tps"]) for p in probes if p["holds"] == "True"]
        failed = [int(p["offered_tps"]) for p in probes if p["holds"] == "False"]
        assert held and failed and max(held) < min(failed)
        assert s["capacity_offered_tps"] == max(held) and s["first_failing_offered_tps"] == min(failed)
        assert min(failed) - max(held) <= max(1, 0.3 * max(held))
        row = next(p for p in probes if int(p["offered_tps"]) == max(held))
        assert s["capacity_tps"] == float(row["throughput_tps"])
    html = (out / "report.html").read_text()
    assert "tx/s, virtual" in html and html.count("data:image/png;base64,") == 1
    assert "p95 &lt;= 500 ms" in html


def test_capacity_refuses_several_seeds(tmp_path):
    result = CliRunner().invoke(main, ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4", "--capacity",
                                       "--seeds", "2", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "one seed" in result.output


# --- the same results wherever the runs are made -----------------------------------------

WALL_CLOCK = ("wall_seconds",)  # the only columns allowed to differ: the simulator's own wall-clock time


def _csv_without_wall_clock(path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in r.items() if k.split(".")[0] not in WALL_CLOCK} for r in csv.DictReader(f)]


@pytest.mark.xdist_group("dask")
def test_serial_jobs_and_a_dask_cluster_give_the_same_results_csv(tmp_path):
    """results.csv (and capacity.csv) row for row, all columns but wall_seconds (docs/benchmarking.md)."""
    from distributed import LocalCluster

    args = ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4,7", "--seeds", "2",
            "--set", "workload.transactions=60", "--json"]
    tables = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for how, extra in [("serial", ["--jobs", "1"]), ("jobs", ["--jobs", "2"]),
                           ("dask", ["--dask", cluster.scheduler_address])]:
            out = tmp_path / how
            result = CliRunner().invoke(main, args + extra + ["--out", str(out)])
            assert result.exit_code == 0, (how, result.output)
            tables[how] = _csv_without_wall_clock(out / "results.csv")
        capacity = ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4,7", "--capacity", "--set",
                    "workload.transactions=40", "--window-s", "0.05", "--tolerance", "0.3", "--json"]
        for how, extra in [("capacity-serial", ["--jobs", "1"]), ("capacity-dask", ["--dask", cluster.scheduler_address])]:
            result = CliRunner().invoke(main, capacity + extra + ["--out", str(tmp_path / how)])
            assert result.exit_code == 0, (how, result.output)
            tables[how] = _csv_without_wall_clock(tmp_path / how / "capacity.csv")
    assert tables["capacity-dask"] == tables["capacity-serial"] and len(tables["capacity-serial"]) > 2
    assert len(tables["serial"]) == 4 + 2 and tables["serial"][0]["throughput_tps"]
    assert tables["jobs"] == tables["serial"]
    assert tables["dask"] == tables["serial"]
    assert "runs made in</th><td class=\"left\">dask tcp://" in (tmp_path / "dask" / "report.html").read_text()


def test_an_unreachable_dask_scheduler_is_bad_input(tmp_path):
    result = CliRunner().invoke(main, ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4",
                                       "--dask", "tcp://127.0.0.1:9", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "cannot reach the scheduler" in result.output


# --- a report a performance engineer trusts ----------------------------------------------

def test_the_report_says_what_produced_it_and_labels_its_clocks(tmp_path):
    from html.parser import HTMLParser

    out = tmp_path / "bench"
    result = CliRunner().invoke(main, ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4,5,6,7",
                                       "--set", "workload.transactions=60", "--jobs", "1", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    for r in table:  # Caliper: fail = refused by the app + never committed; throughput counts succ only
        assert int(float(r["fail"])) == int(float(r["fail_refused"])) + int(float(r["fail_uncommitted"]))
        assert float(r["throughput_tps"]) <= float(r["committed_tps"])
        assert float(r["consensus_messages_per_block"]) <= float(r["consensus_and_request_messages_per_block"]) \
            <= float(r["messages_per_block"])

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.headers, self.rows, self.cell, self.pre, self._in = [], {}, None, "", None

        def handle_starttag(self, tag, attrs):
            if tag in ("th", "td", "pre"):
                self._in, self.cell = tag, ""

        def handle_endtag(self, tag):
            if tag == "th" and self._in == "th":
                self.headers.append(self.cell.strip())
            elif tag == "td" and self._in == "td" and self.headers:
                self.rows.setdefault(self.headers[-1], self.cell.strip())
            elif tag == "pre":
                self.pre = self.cell
            self._in = None

        def handle_data(self, data):
            if self._in:
                self.cell += data

    page = Cells()
    page.feed((out / "report.html").read_text())
    what = page.rows
    assert what["command"].startswith("citychain bench") or what["command"]
    assert "commit" in what["citychain"] and what["citychain"].split(",")[0].count(".") >= 1
    assert what["date (UTC)"][:2] == "20" and "verify 112 µs" in what["CPU cost model (virtual)"]
    assert "cores" in what["machine"] and "Python" in what["machine"]
    import yaml
    assert yaml.safe_load(page.pre)["chain"]["id"] == "guiyang"  # the scenario, as run
    headers = page.headers
    assert "sim wall s" not in headers and "simulator wall-clock s (per run)" in headers
    assert {"fail: refused by app", "fail: never committed", "throughput (succ tx/s, virtual)",
            "msgs/block: consensus", "msgs/block: consensus + requests", "Mbit/s per node (virtual)"} <= set(headers)
    for h in headers:  # every rate or time says which clock it is on
        if "tx/s" in h or "(ms" in h or "Mbit/s" in h or " s" in h.split("(")[0][-2:]:
            assert "virtual" in h or "wall-clock" in h, h
    html = (out / "report.html").read_text()
    assert "RMS residual" in html  # 4 node counts > 3 parameters: fitted, with its residual


def test_no_fitted_curve_without_more_points_than_parameters():
    from citychain.bench.sweep import fit_quadratic

    assert fit_quadratic([4, 7, 10], [25.0, 90.0, 200.0]) is None
    a, b, c, rms = fit_quadratic([4, 7, 10, 13], [25.0, 90.0, 200.0, 330.0])
    assert rms >= 0 and a > 0


def test_plots_do_not_exaggerate(tmp_path, monkeypatch):
    """A throughput of 960-1005 tx/s is drawn on an axis from 0, not from 960."""
    import matplotlib.pyplot as plt

    from citychain.bench import plots

    limits = []
    real_save = plots._save

    def spy(fig, ax, path):
        result = real_save(fig, ax, path)
        limits.append((path.name, ax.get_ylim()))
        return result

    monkeypatch.setattr(plots, "_save", spy)
    rows = [{"name": "x", "nodes": n, "throughput_tps": t, "p50_ms": 10.0, "p99_ms": 12.0, "bandwidth_mbps_per_node": 3.0,
             "consensus_and_request_messages_per_block": 40.0,
             **{f"msgs_per_block.{k}": 5.0 for k in ("pre-prepare", "prepare", "commit", "checkpoint")}}
            for n, t in [(4, 1005.0), (7, 990.0), (10, 960.0)]]
    plots.make_plots(rows, [], 10, tmp_path)
    plt.close("all")
    assert limits and all(lo == 0 for _, (lo, _hi) in limits), limits


# --- every column in the docs, and every documented column in the code -------------------

def _documented(section: str) -> set[str]:
    import re

    from tests.conftest import ROOT

    text = (ROOT / "docs" / "benchmarking.md").read_text()
    part = text.split(section, 1)[1].split("\n#", 1)[0]
    names = set()
    for line in part.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


def _generic(column: str, set_fields: set[str]) -> str:
    if column in set_fields:
        return "FIELD"
    if column.endswith(".sd"):
        return "COLUMN.sd"
    for prefix in ("msgs_per_block.", "bytes_per_block."):
        if column.startswith(prefix):
            return prefix + "TYPE"
    return column


def test_every_csv_column_is_documented_and_every_documented_column_exists(tmp_path):
    result = CliRunner().invoke(main, ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4", "--seeds", "2",
                                       "--set", "workload.transactions=20", "--jobs", "1", "--out",
                                       str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "r" / "results.csv") as f:
        results = next(csv.reader(f))
    in_code = {_generic(c, {"workload.transactions"}) for c in results}
    assert in_code == _documented("### Columns of `results.csv`")

    result = CliRunner().invoke(main, ["bench", str(SCENARIOS / "guiyang.yaml"), "--nodes", "4", "--capacity",
                                       "--set", "workload.transactions=20", "--window-s", "0.02", "--tolerance", "1",
                                       "--jobs", "1", "--out", str(tmp_path / "c"), "--json"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "c" / "capacity.csv") as f:
        capacity = next(csv.reader(f))
    own = {_generic(c, set()) for c in capacity} - in_code
    assert own | {"kind", "wall_seconds"} == _documented("### Columns of `capacity.csv`")
