"""`citychain bench`: run a sweep and write its CSV, JSON, plots and HTML report."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .plots import make_plots
from .report import write_report
from ..scenario import Scenario
from .sweep import aggregate, apply, plan, run_point


def default_jobs() -> int:
    return os.cpu_count() or 1


def run_sweep(scenario: Scenario, source: str, counts: list[int], seeds: int, sets: list[tuple[str, list]],
              out: Path, console: Console, jobs: int | None = None) -> list[dict]:
    """Run every point of the sweep, ``jobs`` at a time in worker processes (default:
    one per core; 1 runs them in this process). The rows come out in the order of the
    plan whatever order the runs finish in, so the results equal a serial sweep's."""
    points = plan(scenario, counts, seeds, sets)
    param_keys = [k for k, _ in sets]
    # Validate every combination before spending time on any run.
    specs = [apply(scenario, {"nodes": p.nodes, "seed": p.seed, **dict(p.params)}, source) for p in points]
    jobs = min(jobs or default_jobs(), len(points))
    rows: list[dict | None] = [None] * len(points)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(f"bench {scenario.chain.id}", total=len(points))
        if jobs <= 1:
            for i, (point, spec) in enumerate(zip(points, specs)):
                bar.update(task, description=f"n={point.nodes} seed={point.seed} {point.label}")
                rows[i] = run_point(spec.model_dump(), point, scenario.chain.id)
                bar.advance(task)
        else:
            # spawn, not fork: the progress bar's refresh thread is running in this process.
            bar.update(task, description=f"bench {scenario.chain.id}: {jobs} processes")
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(run_point, spec.model_dump(), point, scenario.chain.id): i
                           for i, (point, spec) in enumerate(zip(points, specs))}
                try:
                    for future in as_completed(futures):
                        i = futures[future]
                        rows[i] = future.result()
                        p = points[i]
                        bar.update(task, description=f"done n={p.nodes} seed={p.seed} {p.label}")
                        bar.advance(task)
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
    agg = aggregate(rows, param_keys)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "results.csv", rows, agg)
    (out / "results.json").write_text(json.dumps({"scenario": source, "runs": rows, "points": agg}, indent=1) + "\n")
    plots = make_plots(agg, param_keys, scenario.consensus.checkpoint_interval, out)
    meta = {"scenario": source, "chain": scenario.chain.name, "node counts": ", ".join(map(str, counts)),
            "seeds per point": seeds, "swept": ", ".join(f"{k} = {v}" for k, v in sets) or "nodes only",
            "transactions per run": scenario.workload.transactions, "offered load (tx/s)": scenario.workload.rate_tps}
    write_report(out / "report.html", f"citychain bench: {scenario.chain.name}", meta, agg, param_keys,
                 scenario.consensus.checkpoint_interval, plots)
    return agg


def _write_csv(path: Path, rows: list[dict], agg: list[dict]) -> None:
    """One table: a row per run (kind=run), then a row per point (kind=mean, with .sd columns)."""
    columns: list[str] = ["kind"]
    for r in rows + agg:
        for k in r:
            if k not in columns:
                columns.append(k)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({"kind": "run", **r})
        for r in agg:
            writer.writerow({"kind": "mean", **r})
