"""The run the simulator benchmarks measure (benchmarks/sim_speed.py, sim_memory.py,
cost_vs_n.py): a scenario with records puts only, n nodes, a transaction count, a block
size and an offered rate; and the process's resident set and its children's CPU time,
for the memory and CPU columns."""

from __future__ import annotations

import argparse
import resource
from pathlib import Path

TAIHU = Path(__file__).resolve().parent.parent / "scenarios" / "taihu.yaml"


def add_workload_options(parser: argparse.ArgumentParser, nodes, tx: int, block: int, rate_help: str) -> None:
    """The options every simulator benchmark takes: --scenario, --nodes, --tx, --block, --rate."""
    parser.add_argument("--scenario", default=str(TAIHU))
    parser.add_argument("--nodes", type=type(nodes), default=nodes)
    parser.add_argument("--tx", type=int, default=tx)
    parser.add_argument("--block", type=int, default=block)
    parser.add_argument("--rate", type=float, default=2500.0, help=rate_help)


def scenario_for(path: Path, n: int, tx: int, block: int, rate: float):
    """The scenario at ``path`` with ``n`` nodes and ``tx`` records puts, ``block`` per
    block, offered at ``rate`` tx/s."""
    from ..scenario import load_scenario

    s = load_scenario(path)
    data = s.model_dump()
    data["nodes"] = n
    data["workload"]["transactions"] = tx
    data["workload"]["rate_tps"] = rate
    data["workload"]["mix"] = [{"app": "records", "op": "put", "weight": 1}]
    data["consensus"]["block_size"] = block
    return type(s).model_validate(data)


def rss_mib() -> float:
    """The resident set now (Linux: /proc/self/statm), in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def children_cpu() -> float:
    """CPU seconds (user + sys) of this process's children that have ended and been waited
    for: a benchmark's timed ``citychain run`` processes, a run's verify worker."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
