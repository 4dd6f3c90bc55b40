"""Equal work with the public PBFT simulators: whole-process wall time against the crypto floor.

The work of issue 13's comparison (csienslab/BFT-Simulator, rev-chaos/pbftSimulator):
100 decisions, one transaction per block, no faults, about 2 ms one-way delay
(benchmarks/equal_work.yaml: one site, 2 ms latency, 0.5 ms jitter, block_size 1,
batch_timeout_ms 20, checkpoint_interval 10, 3 clients, 100 records puts at 20 tx/s).
Each n runs as a fresh `python -m citychain run equal_work.yaml --nodes N --json`
process, timed whole (Python start-up and imports count, as they do for the peers),
with the command's default verify worker (a second process checking signatures ahead,
on with two cores or more) unless --verify-worker or --no-verify-worker says otherwise;
the median of --repeat runs is printed. Then the same run is made once in this
process to count its unique signed objects and time the crypto floor: signing and
verifying each once (citychain.bench.floor, as benchmarks/sim_speed.py does).
See docs/benchmarking.md.

    python benchmarks/equal_work.py                     # n = 4, 16, 32, 64, 3 repeats
    python benchmarks/equal_work.py --nodes 4,16 --repeat 5
    python benchmarks/equal_work.py --nodes 64 --no-verify-worker
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from citychain.bench.floor import crypto_floor  # noqa: E402
from citychain.bench.records_run import children_cpu  # noqa: E402
from citychain.scenario import load_with_overrides  # noqa: E402
from citychain.sim.run import simulate  # noqa: E402
from citychain.summary import summarize  # noqa: E402

SCENARIO = Path(__file__).resolve().parent / "equal_work.yaml"


def whole_process(scenario: Path, n: int, worker: bool | None) -> tuple[float, float, dict]:
    """Wall seconds and CPU seconds (user + sys, with any worker it forks) of one
    `python -m citychain run` process, and its JSON summary. ``worker``: --verify-worker
    or --no-verify-worker, None for the command's default."""
    command = [sys.executable, "-m", "citychain", "run", str(scenario), "--nodes", str(n), "--json", "--no-progress"]
    if worker is not None:
        command.append("--verify-worker" if worker else "--no-verify-worker")
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    cpu = children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return wall, cpu, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(SCENARIO))
    parser.add_argument("--nodes", default="4,16,32,64")
    parser.add_argument("--repeat", type=int, default=3, help="processes per n; the median is printed")
    parser.add_argument("--verify-worker", action=argparse.BooleanOptionalAction, default=None,
                        help="pass --verify-worker or --no-verify-worker to citychain run (default: its default)")
    args = parser.parse_args()
    scenario = Path(args.scenario)
    sizes = [int(x) for x in args.nodes.split(",")]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    worker = {None: "as citychain run decides", True: "on", False: "off"}[args.verify_worker]
    print(f"equal work: {scenario.name}, median of {args.repeat} processes per n, verify worker {worker}; "
          f"{os.cpu_count()} cores, load average {load} (1, 5, 15 min) at the start")
    print(f"{'n':>4} {'wall s':>7} {'min s':>6} {'max s':>6} {'cpu s':>6} {'in-run s':>8} {'floor s':>8} "
          f"{'ratio':>6} {'cpu floor':>9} {'cpu ratio':>9} {'unique sigs':>11} {'deliveries':>10} {'deliv/s':>9} "
          f"{'blocks':>6} {'agree':>5}")
    for n in sizes:
        walls, cpus, summaries = [], [], []
        for _ in range(args.repeat):
            wall, cpu, summary = whole_process(scenario, n, args.verify_worker)
            walls.append(wall)
            cpus.append(cpu)
            summaries.append(summary)
        wall = statistics.median(walls)
        summary = summaries[walls.index(wall)] if wall in walls else summaries[0]
        # The same (scenario, seed) in this process: the same run, so the same signed objects.
        gc.collect()
        run = simulate(load_with_overrides(scenario, nodes=n), keep_checked=True)  # for the floor
        here = summarize(run, "equal-work")
        if here["head"] != summary["head"]:
            sys.exit(f"n = {n}: the run in this process differs from the timed process's ({here['head']})")
        floor, unique = crypto_floor(run)
        cpu_floor, _ = crypto_floor(run, time.thread_time)
        del run
        deliveries = summary["messages"]["total"] - summary["messages_lost"]
        cpu = statistics.median(cpus)
        print(f"{n:>4} {wall:>7.2f} {min(walls):>6.2f} {max(walls):>6.2f} {cpu:>6.2f} {summary['wall_seconds']:>8.2f} "
              f"{floor:>8.2f} {wall / floor:>6.2f} {cpu_floor:>9.2f} {cpu / cpu_floor:>9.2f} {unique:>11,} "
              f"{deliveries:>10,} {deliveries / wall:>9,.0f} "
              f"{summary['blocks']:>6} {str(summary['agreement']):>5}", flush=True)
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
