"""Simulator speed: wall time against the crypto floor, for n = 20, 40, 60.

The floor of a simulated run is signing and verifying each unique signed object
once (client requests, pre-prepares, prepares, commits, checkpoints). This
measures, in the same process, that floor for the run just made, and prints
wall seconds, the wall/floor ratio, simulated message deliveries per second and
peak memory. A run checks signatures ahead in a worker process as `citychain run` does
(on with two cores or more, CITYCHAIN_VERIFY_PROCESS overriding; --no-verify-worker for
none). See docs/benchmarking.md.

    python benchmarks/sim_speed.py                      # 10,000 tx, 100 per block
    python benchmarks/sim_speed.py --tx 1000 --nodes 20,40,60
    python benchmarks/sim_speed.py --nodes 60 --no-verify-worker
"""

from __future__ import annotations

import argparse
import gc
import math
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from citychain.bench.floor import crypto_floor  # noqa: E402
from citychain.bench.records_run import add_workload_options, children_cpu, scenario_for  # noqa: E402
from citychain.sim.run import simulate  # noqa: E402
from citychain.sim.verify import default_process  # noqa: E402
from citychain.summary import summarize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_options(parser, nodes="20,40,60", tx=10_000, block=100,
                         rate_help="offered tx/s (about capacity at n = 60)")
    parser.add_argument("--verify-worker", action=argparse.BooleanOptionalAction, default=None,
                        help="check signatures ahead in a worker process (default: as citychain run)")
    args = parser.parse_args()
    worker = default_process(auto=True) if args.verify_worker is None else args.verify_worker
    sizes = [int(x) for x in args.nodes.split(",")]
    print(f"{args.tx} signed transactions, {args.block} per block, scenario {Path(args.scenario).name}, "
          f"verify worker {'on' if worker else 'off'}")
    header = (f"{'n':>4} {'wall s':>8} {'cpu s':>6} {'worker s':>8} {'floor s':>8} {'ratio':>6} {'cpu floor':>9} {'cpu ratio':>9} "
              f"{'deliveries':>11} {'deliv/s':>10} "
              f"{'blocks':>6} {'wall ms/block':>13} {'unique sigs':>11} {'peak MiB':>9} {'agree':>5}")
    print(header)
    per_block = []
    for n in sizes:
        scenario = scenario_for(Path(args.scenario), n, args.tx, args.block, args.rate)
        gc.collect()
        cpu = time.process_time()  # this process's user + sys (a worker process it forks is not in it)
        worker_cpu = children_cpu()
        run = simulate(scenario, keep_checked=True, verify_process=worker)  # every envelope, for the floor
        cpu = time.process_time() - cpu
        worker_cpu = children_cpu() - worker_cpu  # the worker, reaped when the run ends
        summary = summarize(run, "bench")
        floor, unique = crypto_floor(run)
        cpu_floor, _ = crypto_floor(run, time.thread_time)
        deliveries = summary["messages"]["total"] - summary["messages_lost"]
        wall = run.wall_seconds
        blocks = summary["blocks"]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        per_block.append((n, wall / max(1, blocks)))
        print(f"{n:>4} {wall:>8.2f} {cpu:>6.2f} {worker_cpu:>8.2f} {floor:>8.2f} {wall / floor:>6.2f} {cpu_floor:>9.2f} "
              f"{cpu / cpu_floor:>9.2f} {deliveries:>11,} "
              f"{deliveries / wall:>10,.0f} {blocks:>6} {1000 * wall / max(1, blocks):>13.1f} {unique:>11,} "
              f"{peak:>9.0f} {str(summary['agreement']):>5}")
        del run
    if len(per_block) >= 2:
        (n0, w0), (n1, w1) = per_block[0], per_block[-1]
        exponent = math.log(w1 / w0) / math.log(n1 / n0)
        print(f"wall cost per block grows as n^{exponent:.2f} from n={n0} to n={n1}")
    print("peak MiB is the process's maximum resident set so far (it only grows across rows)")


if __name__ == "__main__":
    main()
