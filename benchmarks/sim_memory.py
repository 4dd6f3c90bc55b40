"""Simulator memory: peak resident set of one run and how the resident set grows along it.

Runs taihu (records only, as benchmarks/sim_speed.py does) with --nodes and --tx, samples
the resident set from /proc/self/statm about every tenth of the transactions (from the
progress callback), and prints the peak, the growth per block between the second sample
and the last and over the second half of the run (issue 13: memory that does not grow
with the length of a run); then summarises the run as ``citychain run`` does and prints
the peak with the summary. See docs/benchmarking.md.

    python benchmarks/sim_memory.py                     # n = 60, 100,000 tx, 100 per block
    python benchmarks/sim_memory.py --nodes 60 --tx 30000
    python benchmarks/sim_memory.py --nodes 20 --tx 80000 --sources 52000,78000

``--sources A,B``: instead, trace allocations (tracemalloc, about 2.5x slower) and print
what grew between A and B transactions executed, by allocation site, in KiB per block.
Choose A and B at the same phase of the bounded caches (the execution memo drops its
older half every 256 blocks after the first 512), or a cache's sawtooth reads as growth.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from citychain.bench.records_run import add_workload_options, rss_mib, scenario_for  # noqa: E402
from citychain.sim.run import simulate  # noqa: E402
from citychain.summary import audit_run, summarize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_options(parser, nodes=60, tx=100_000, block=100, rate_help="offered tx/s, virtual")
    parser.add_argument("--sources", metavar="A,B", help="trace what grew between A and B tx executed, by source")
    args = parser.parse_args()
    scenario = scenario_for(Path(args.scenario), args.nodes, args.tx, args.block, args.rate)
    if args.sources:
        sources(scenario, *(int(x) for x in args.sources.split(",")), args.block)
        return
    marks: list[tuple[int, float]] = []

    def progress(done: int, total: int) -> None:
        if not marks or done >= marks[-1][0] + total // 10:
            marks.append((done, rss_mib()))

    start = time.perf_counter()
    run = simulate(scenario, progress=progress)
    wall = time.perf_counter() - start
    blocks = max(node.ledger.height for node in run.nodes.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"n = {args.nodes}, {args.tx:,} tx, {blocks} blocks: wall {wall:.1f} s, peak {peak:.0f} MiB")
    for done, rss in marks:
        print(f"  {done:>9,} tx executed  {rss:7.0f} MiB")
    if len(marks) >= 3:
        (d0, r0), (d1, r1) = marks[1], marks[-1]
        per_block = (r1 - r0) * 1024 / max(1, (d1 - d0) / args.block)
        print(f"growth {per_block:.0f} KiB per block ({(r1 - r0) / max(1, d1 - d0) * 100_000:.0f} MiB per 100,000 tx)")
        (d0, r0) = next((d, r) for d, r in marks if d >= marks[-1][0] // 2)
        if d1 > d0:
            print(f"second half ({d0:,} -> {d1:,} tx): {(r1 - r0) * 1024 / ((d1 - d0) / args.block):.0f} KiB per block")
    start = time.perf_counter()
    summary = summarize(run, "sim_memory", audit_run(run))
    print(f"summary {time.perf_counter() - start:.1f} s ({summary['committed_tx']:,} tx committed): "
          f"peak with it {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
          f"{rss_mib():.0f} MiB after")


def sources(scenario, a: int, b: int, block: int) -> None:
    snaps: dict[int, tuple[int, tracemalloc.Snapshot]] = {}

    def progress(done: int, total: int) -> None:
        for mark in (a, b):
            if done >= mark and mark not in snaps:
                gc.collect()
                snaps[mark] = (done, tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)]))

    tracemalloc.start()
    simulate(scenario, progress=progress)
    tracemalloc.stop()
    if len(snaps) < 2:
        sys.exit(f"the run executed fewer than {b:,} tx")
    (d0, s0), (d1, s1) = snaps[a], snaps[b]
    blocks = (d1 - d0) / block
    diffs = s1.compare_to(s0, "lineno")
    print(f"{d0:,} -> {d1:,} tx executed ({blocks:.0f} blocks): traced memory "
          f"{sum(d.size_diff for d in diffs) / 1024 / blocks:.1f} KiB per block")
    for d in diffs[:20]:
        print(f"{d.size_diff / 1024 / blocks:8.2f} KiB/block {d.count_diff / blocks:8.1f} objects/block  {d.traceback}")


if __name__ == "__main__":
    main()
