"""Simulator cost per block against n: CPU seconds, deliveries and memory, and the exponent k.

Each n runs twice, each run in its own process (so each peak resident set is that
run's own, not the largest so far), with a short fixed workload: taihu, records puts
only, --tx and then 2 × --tx transactions in blocks of --block (as
benchmarks/sim_speed.py makes it). The cost per block is the difference between the two
runs over the difference in blocks: the marginal cost of a block, without what a run
pays once whatever its length (the genesis: n keys and certificates; the idle drain at
the end). Prints per n the CPU seconds of both runs, the marginal CPU ms and deliveries
per block, and the peak resident set of the longer run; then a least-squares fit of cost
per block ∝ n^k over all n (CPU and deliveries), and k between neighbouring n. PBFT's
normal case is O(n²) messages per block, so k ≤ 2 says the simulator adds no worse than
that.
See docs/benchmarking.md.

    python benchmarks/cost_vs_n.py                          # n = 4, 16, 32, 64, 100, 150, 200
    python benchmarks/cost_vs_n.py --nodes 4,16,32 --tx 100 --block 10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from citychain.bench.records_run import add_workload_options, rss_mib, scenario_for  # noqa: E402


def one(n: int, tx: int, block: int, rate: float, scenario_path: Path) -> dict:
    """One run at ``n``, in this process: its CPU seconds, blocks, deliveries and memory."""
    from citychain.sim.run import simulate

    scenario = scenario_for(scenario_path, n, tx, block, rate)
    before = rss_mib()
    cpu = time.process_time()
    run = simulate(scenario)
    cpu = time.process_time() - cpu
    metrics = run.metrics
    return {"n": n, "cpu_s": cpu, "wall_s": run.wall_seconds,
            "blocks": max(run.nodes[nid].ledger.height for nid in run.honest),
            "deliveries": sum(metrics.messages.values()) - metrics.lost,
            "rss_before_mib": before, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(n: int, tx: int, args) -> dict:
    """``one(n, tx)`` in a fresh process."""
    done = subprocess.run([sys.executable, __file__, "--one", str(n), "--tx", str(tx), "--block", str(args.block),
                           "--rate", str(args.rate), "--scenario", args.scenario],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit_exponent(points: list[tuple[int, float]]) -> float:
    """k of y = c·n^k by least squares on (log n, log y)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_options(parser, nodes="4,16,32,64,100,150,200", tx=200, block=20, rate_help="offered tx/s, virtual")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child: one n, JSON on stdout
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.tx, args.block, args.rate, Path(args.scenario))))
        return
    sizes = [int(x) for x in args.nodes.split(",")]
    print(f"{args.tx} transactions, {args.block} per block, scenario {Path(args.scenario).name}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'n':>4} {'cpu s':>8} {'cpu s×2':>8} {'blk':>4} {'blk×2':>4} {'cpu ms/block':>12} "
          f"{'deliveries/block':>16} {'peak MiB':>9} {'run MiB':>8}")
    rows = []
    for n in sizes:
        short, row = (child(n, tx, args) for tx in (args.tx, 2 * args.tx))
        blocks = max(1, row["blocks"] - short["blocks"])
        row["cpu_ms_per_block"] = 1000 * (row["cpu_s"] - short["cpu_s"]) / blocks
        row["deliveries_per_block"] = (row["deliveries"] - short["deliveries"]) / blocks
        rows.append(row)
        print(f"{n:>4} {short['cpu_s']:>8.2f} {row['cpu_s']:>8.2f} {short['blocks']:>4} {row['blocks']:>4} "
              f"{row['cpu_ms_per_block']:>12.1f} {row['deliveries_per_block']:>16,.0f} {row['peak_mib']:>9.0f} "
              f"{row['peak_mib'] - row['rss_before_mib']:>8.0f}", flush=True)
    if len(rows) >= 2:
        for key, what in (("cpu_ms_per_block", "CPU seconds"), ("deliveries_per_block", "deliveries")):
            k = fit_exponent([(r["n"], r[key]) for r in rows])
            steps = ", ".join(f"{a['n']}→{b['n']}: {math.log(b[key] / a[key]) / math.log(b['n'] / a['n']):.2f}"
                              for a, b in zip(rows, rows[1:]))
            print(f"{what} per block ∝ n^k: k = {k:.2f} (least squares over all n; between neighbours {steps})")
    print(f"load average {os.getloadavg()[0]:.1f}; cpu s, blk: the run of --tx; cpu s×2, blk×2: the run of twice that; "
          "run MiB: its peak resident set less the resident set before it")


if __name__ == "__main__":
    main()
