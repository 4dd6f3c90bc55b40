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

from dataclasses import asdict

from .capacity import Criterion, search, summarize_search
from .plots import capacity_plot, make_plots
from .report import write_capacity_report, write_report
from ..scenario import Scenario
from .sweep import aggregate, apply, plan, run_point


def default_jobs() -> int:
    return os.cpu_count() or 1


class Executor:
    """Where runs are made: in this process (``jobs=1``), in ``jobs`` spawned processes,
    or on a Dask distributed cluster (``dask`` = its scheduler's address). Either way
    ``map`` yields (index, result) as runs finish, and callers put results back in plan
    order, so the output is the same as a serial sweep's."""

    def __init__(self, jobs: int | None, dask: str | None, tasks: int):
        self.dask = dask
        self.jobs = 1 if dask is None and tasks <= 1 else min(jobs or default_jobs(), max(1, tasks))
        self.client = None
        if dask:
            try:
                from distributed import Client
            except ImportError:
                raise BenchError("--dask needs Dask distributed: pip install 'citychain[dask]'") from None
            try:
                self.client = Client(dask, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise BenchError(f"--dask {dask}: cannot reach the scheduler ({exc})") from None

    @property
    def where(self) -> str:
        return f"dask {self.dask}" if self.dask else ("this process" if self.jobs <= 1 else f"{self.jobs} processes")

    def map(self, fn, calls: list[tuple]):
        if self.client is not None:
            from distributed import as_completed as dask_completed
            futures = [self.client.submit(fn, *args, pure=False) for args in calls]
            index = {f.key: i for i, f in enumerate(futures)}
            try:
                for future in dask_completed(futures):
                    yield index[future.key], future.result()
            finally:
                for future in futures:
                    future.cancel()
            return
        if self.jobs <= 1:
            for i, args in enumerate(calls):
                yield i, fn(*args)
            return
        # spawn, not fork: the progress bar's refresh thread is running in this process.
        with ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(fn, *args): i for i, args in enumerate(calls)}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def close(self):
        if self.client is not None:
            self.client.close()


class BenchError(Exception):
    """A sweep that cannot start (e.g. an unreachable Dask scheduler)."""


def _bar(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal)


def run_sweep(scenario: Scenario, source: str, counts: list[int], seeds: int, sets: list[tuple[str, list]],
              out: Path, console: Console, jobs: int | None = None, dask: str | None = None,
              command: str | None = None) -> list[dict]:
    """Run every point of the sweep, ``jobs`` at a time in worker processes (default:
    one per core; 1 runs them in this process) or on the Dask cluster at ``dask``. The
    rows come out in the order of the plan whatever order the runs finish in, so the
    results equal a serial sweep's (but for the wall-clock seconds)."""
    points = plan(scenario, counts, seeds, sets)
    param_keys = [k for k, _ in sets]
    # Validate every combination before spending time on any run.
    specs = [apply(scenario, {"nodes": p.nodes, "seed": p.seed, **dict(p.params)}, source) for p in points]
    executor = Executor(jobs, dask, len(points))
    rows: list[dict | None] = [None] * len(points)
    try:
        with _bar(console) as bar:
            task = bar.add_task(f"bench {scenario.chain.id}: {executor.where}", total=len(points))
            calls = [(spec.model_dump(), point, scenario.chain.id) for point, spec in zip(points, specs)]
            for i, result in executor.map(run_point, calls):
                rows[i] = result
                p = points[i]
                bar.update(task, description=f"done n={p.nodes} seed={p.seed} {p.label}")
                bar.advance(task)
    finally:
        executor.close()
    agg = aggregate(rows, param_keys)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "results.csv", rows, agg)
    (out / "results.json").write_text(json.dumps({"scenario": source, "runs": rows, "points": agg}, indent=1) + "\n")
    plots = make_plots(agg, param_keys, scenario.consensus.checkpoint_interval, out)
    meta = {"node counts": ", ".join(map(str, counts)), "seeds per point": seeds,
            "swept": ", ".join(f"{k} = {v}" for k, v in sets) or "nodes only",
            "transactions per run": scenario.workload.transactions,
            "offered load (tx/s, virtual)": scenario.workload.rate_tps, "runs made in": executor.where}
    write_report(out / "report.html", f"citychain bench: {scenario.chain.name}", provenance(scenario, source, command),
                 meta, agg, param_keys, scenario.consensus.checkpoint_interval, plots)
    return agg


def run_capacity(scenario: Scenario, source: str, counts: list[int], criterion: Criterion, out: Path,
                 console: Console, jobs: int | None = None, dask: str | None = None,
                 command: str | None = None) -> list[dict]:
    """The saturation search (citychain.bench.capacity) for each n, one search per
    worker; writes capacity.csv, capacity.json, capacity.png and report.html."""
    apply(scenario, {"nodes": max(counts)}, source)  # refuse a bad size before any run
    data = scenario.model_dump()
    executor = Executor(jobs, dask, len(counts))
    found: list[list[dict] | None] = [None] * len(counts)
    try:
        with _bar(console) as bar:
            task = bar.add_task(f"capacity {scenario.chain.id}: {executor.where}", total=len(counts))
            calls = [(data, n, scenario.seed, int(scenario.workload.rate_tps), criterion, scenario.chain.id)
                     for n in counts]
            for i, probes in executor.map(search, calls):
                found[i] = probes
                best = summarize_search(probes)
                bar.update(task, description=f"n={counts[i]}: {best['capacity_tps']:g} tx/s (virtual), "
                                             f"{len(probes)} probes")
                bar.advance(task)
    finally:
        executor.close()
    searches: list[list[dict]] = found  # type: ignore[assignment]
    summary = [summarize_search(p) for p in searches]
    probes = [p for ps in searches for p in ps]
    out.mkdir(parents=True, exist_ok=True)
    _write_capacity_csv(out / "capacity.csv", probes, summary)
    (out / "capacity.json").write_text(json.dumps({"scenario": source, "criterion": asdict(criterion),
                                                   "capacity": summary, "probes": probes}, indent=1) + "\n")
    plot = capacity_plot(summary, searches, out / "capacity.png")
    meta = {"node counts": ", ".join(map(str, counts)), "seed": scenario.seed,
            "criterion": criterion_text(criterion), "search start (tx/s, virtual)": int(scenario.workload.rate_tps),
            "runs made in": executor.where}
    write_capacity_report(out / "report.html", f"citychain bench --capacity: {scenario.chain.name}",
                          provenance(scenario, source, command), meta, summary, probes, plot)
    return summary


def criterion_text(c: Criterion) -> str:
    return (f"reply rate >= {c.ratio:g} x send rate, committed >= {c.ratio:g} x submitted, p95 <= "
            f"{c.latency_bound_ms:g} ms (virtual); each probe offers >= {c.window_s:g} s of load; bisection to "
            f"within {c.tolerance:.0%}")


def provenance(scenario: Scenario, source: str, command: str | None) -> dict:
    """What produced a report: enough to make it again and to judge it."""
    import datetime
    import importlib.metadata
    import platform
    import subprocess
    import sys

    import yaml

    try:
        version = importlib.metadata.version("citychain")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10).stdout.strip() or "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if dirty and not commit.startswith("unknown"):
            commit += " (with uncommitted changes)"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown (no git)"
    cpu = scenario.cpu
    return {
        "scenario": source,
        "chain": scenario.chain.name,
        "command": command or " ".join(sys.argv),
        "citychain": f"{version}, commit {commit}",
        "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "CPU cost model (virtual)": f"sign {cpu.sign_us:g} µs, verify {cpu.verify_us:g} µs, execute "
                                    f"{cpu.execute_tx_us:g} µs per tx, request queue {cpu.request_queue_ms:g} ms",
        "machine": f"{platform.node()}: {platform.platform()}, {platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "scenario YAML": yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
    }


def _write_csv(path: Path, rows: list[dict], agg: list[dict]) -> None:
    """One table: a row per run (kind=run), then a row per point (kind=mean, with .sd columns)."""
    _write_kinds(path, (("run", rows), ("mean", agg)))


def _write_capacity_csv(path: Path, probes: list[dict], summary: list[dict]) -> None:
    """A row per probe (kind=probe), then a row per node count (kind=capacity)."""
    _write_kinds(path, (("probe", probes), ("capacity", summary)))


def _write_kinds(path: Path, parts) -> None:
    """One CSV of several kinds of row: the columns are every key, in order of first use."""
    columns: list[str] = ["kind"]
    for _, rows in parts:
        for r in rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for kind, rows in parts:
            for r in rows:
                writer.writerow({"kind": kind, **r})
