"""A 20-node cluster on this machine: measured, next to its CPU-bound ceiling and the simulator.

Starts a 20-node Taihu cluster (20 node processes and a Mosquitto broker) in a temporary
directory, runs `citychain cluster compare` on it (calibration, the broker's delay, the
load, the simulator with this machine's costs), prints throughput, latency, messages
per block and CPU and memory per node process, the CPU-bound ceiling (the signatures
each block needs, times their measured cost, over this machine's cores) and the
simulator's prediction for the same scenario, then stops the cluster. The full report
(compare.html, compare.json, compare.png) stays in --out. See docs/benchmarking.md,
"Real cluster".

    .venv/bin/python benchmarks/cluster_20.py
    .venv/bin/python benchmarks/cluster_20.py --rate 50 --retry-ms 1000 --out out/cluster_20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from citychain.cluster.compare_report import short  # noqa: E402


def citychain(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """The command line, as a user runs it (from this checkout)."""
    return subprocess.run([sys.executable, "-m", "citychain", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def report(doc: dict, elapsed: float) -> None:
    c, s = doc["cluster"], doc["simulator"]
    cal = doc["calibration"]
    n = doc["nodes"]
    print(f"\nCluster: {doc['chain']}, n = {n} (f = {doc['f']}), {doc['node_processes']} node processes on "
          f"{doc['cores']} cores; {doc['transactions']} tx offered at {doc['rate_tps']:g} tx/s; view-change timeout "
          f"{doc['view_change_timeout_ms']:g} ms, client retry {doc['retry_ms']:g} ms; block size {doc['block_size']}, "
          f"batch timeout "
          f"{doc['batch_timeout_ms']:g} ms")
    print(f"  calibration: sign {cal['cpu']['sign_us']:.1f} us, verify {cal['cpu']['verify_us']:.1f} us, execute "
          f"{cal['cpu']['execute_tx_us']:.1f} us/tx, durable commit {cal['storage_commit_ms']:.2f} ms; broker one-way "
          f"{cal['broker']['one_way_ms']['p50']:.2f} ms idle, "
          f"{cal['broker']['one_way_under_load_ms']['p50']:.2f} ms under the load (p50)")

    rows = [("throughput (tx/s)", "throughput_tps", "{:,.1f}"), ("latency p50 (ms)", "p50_ms", "{:,.1f}"),
            ("latency p95 (ms)", "p95_ms", "{:,.1f}"), ("latency p99 (ms)", "p99_ms", "{:,.1f}"),
            ("consensus messages per block", "messages_per_block", "{:,.0f}"),
            ("consensus bytes per block", "bytes_per_block", "{:,.0f}"),
            ("node publishes per block (no status)", "publishes_per_block", "{:,.1f}"),
            ("status notices per block", "status_notices_per_block", "{:,.1f}"),
            ("blocks", "blocks", "{}"), ("tx per block", "tx_per_block", "{:,.1f}"),
            ("view changes", "view_changes", "{}"), ("client retries", "retries", "{}"),
            ("CPU s per node", "cpu_s_per_node", "{:,.2f}"), ("CPU us per message received", "cpu_us_per_message",
                                                              "{:,.0f}")]
    print(f"\n{'':<38}{'cluster':>14}{'simulator':>14}  verdict")
    for label, key, fmt in rows:
        verdict = doc["differences"].get(key, {}).get("verdict", "")
        print(f"{label:<38}{fmt.format(c[key]):>14}{fmt.format(s[key]):>14}  {verdict}")
    print(f"{'PBFT analytic messages per block':<38}{doc['analytic_messages_per_block']:>28,.0f}")

    print("\nNode processes during the load")
    print(f"{'pid':>8} {'nodes':<10} {'CPU s':>7} {'CPU %':>6} {'peak MiB':>9}")
    for p in doc["resources"]:
        print(f"{p['pid']:>8} {','.join(p['nodes']):<10} {p['cpu_s']:>7.2f} {p['cpu_percent']:>6.0f} "
              f"{p['peak_rss_mib']:>9.0f}")
    total_cpu = sum(p["cpu_s"] for p in doc["resources"])
    print(f"{'total':>8} {'':<10} {total_cpu:>7.2f} {'':>6} "
          f"{sum(p['peak_rss_mib'] for p in doc['resources']):>9.0f}")

    print(f"\nCPU-bound ceiling on {doc['cores']} cores (PBFT normal case, n = {n}; signatures per block times "
          f"their measured cost)")
    for name, ceiling in (("full blocks", doc["ceiling"]["full_blocks"]), ("blocks as run", doc["ceiling"]["as_run"])):
        print(f"  {name:<14} {ceiling['block_tx']:>6.1f} tx/block: {ceiling['signs_per_block']:,.0f} signs + "
              f"{ceiling['verifies_per_block']:,.0f} verifies = {ceiling['signature_ms_per_block']:,.1f} ms CPU a "
              f"block -> {ceiling['max_tps']:,.0f} tx/s ({ceiling['max_tps_with_execution']:,.0f} with execution)")

    print("\nSide by side")
    print(f"  cluster (measured)        {c['throughput_tps']:>8,.1f} tx/s   p50 {c['p50_ms']:>9,.1f} ms   "
          f"p99 {c['p99_ms']:>9,.1f} ms   {c['messages_per_block']:>6,.0f} msgs/block")
    print(f"  simulator (prediction)    {s['throughput_tps']:>8,.1f} tx/s   p50 {s['p50_ms']:>9,.1f} ms   "
          f"p99 {s['p99_ms']:>9,.1f} ms   {s['messages_per_block']:>6,.0f} msgs/block")
    for name, v in doc["variants"].items():
        print(f"  {short(name):<24}  {v['throughput_tps']:>8,.1f} tx/s   p50 {v['p50_ms']:>9,.1f} ms   "
              f"p99 {v['p99_ms']:>9,.1f} ms   (diagnostic: CPU costs x{v['cpu_scale']:.1f})")
    print(f"  CPU-bound ceiling         {doc['ceiling']['full_blocks']['max_tps']:>8,.0f} tx/s (full blocks), "
          f"{doc['ceiling']['as_run']['max_tps']:,.0f} tx/s (blocks as run)")
    print(f"\nwall time {elapsed:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="taihu")
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--transactions", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0,
                        help="offered tx/s; keep it moderate: 20 processes on 2 cores saturate (docs/benchmarking.md)")
    parser.add_argument("--view-change-timeout-ms", type=float, default=2000.0,
                        help="taihu's 500 ms sends a loaded 20-node cluster into view changes")
    parser.add_argument("--retry-ms", type=float, default=5000.0,
                        help="the clients' retry timeout; taihu's 1000 ms is below a loaded 20-node cluster's "
                             "latency, and the retries (to every node) then take the cluster down")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE",
                        help="another scenario field for `cluster up`, e.g. consensus.block_size=50 (repeatable)")
    parser.add_argument("--per-process", type=int, default=1, help="nodes per OS process")
    parser.add_argument("--out", default="out/cluster_20", help="where the compare report is written")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's directory (stores, logs)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="citychain-cluster20-"))
    directory = work / "cluster"
    out = Path(args.out).resolve()
    started = time.monotonic()
    print(f"load average before: {load_average()} (the machine may be shared: figures move with it)")
    print(f"starting {args.nodes} nodes in {directory} ...", flush=True)
    up = citychain("cluster", "up", args.scenario, "--nodes", str(args.nodes), "--per-process", str(args.per_process),
                   "--set", f"consensus.view_change_timeout_ms={args.view_change_timeout_ms:g}",
                   "--set", f"workload.retry_ms={args.retry_ms:g}",
                   *[arg for field in args.sets for arg in ("--set", field)],
                   "--dir", str(directory), "--timeout", "120")
    try:
        if up.returncode != 0:
            print(up.stdout + up.stderr, file=sys.stderr)
            return up.returncode
        print(f"comparing: {args.transactions} tx at {args.rate:g} tx/s, on the cluster and in the simulator ...",
              flush=True)
        done = citychain("cluster", "compare", "--dir", str(directory), "--transactions", str(args.transactions),
                         "--rate", f"{args.rate:g}", "--out", str(out), "--json")
        if not done.stdout.strip():
            print(done.stderr, file=sys.stderr)
            return done.returncode or 1
        doc = json.loads(done.stdout)
        print(f"load average after: {load_average()}")
        report(doc, time.monotonic() - started)
        print(f"report: {out / 'compare.html'}")
        return done.returncode
    finally:
        down = citychain("cluster", "down", "--dir", str(directory))
        print(down.stdout.strip() or down.stderr.strip())
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {directory}")


if __name__ == "__main__":
    sys.exit(main())
