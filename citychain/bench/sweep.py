"""Parameter sweeps for `citychain bench`: which runs to make, and the figures of each.

Columns follow Hyperledger Caliper's report (name, succ, fail, send rate, max, min
and average latency, throughput) and add what a node-count study needs: latency
percentiles, blocks, messages and bytes per block by type, view changes, modelled
CPU per node, bandwidth per node and the simulator's own wall time.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from typing import Any

from ..scenario import Scenario, ScenarioError, parse_scenario
from ..sim.run import SimRun
from ..summary import summarize

MESSAGE_TYPES = ("request", "pre-prepare", "prepare", "commit", "checkpoint", "view-change", "new-view",
                 "fetch", "blocks")


MAX_COUNT = 256  # citychain.scenario.MAX_NODES


def parse_counts(text: str) -> list[int]:
    """'20,30,40' or '4..64:4' (from 4 to 64 in steps of 4) or a mix: '4,7,10..40:10'."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if ".." in part:
            span, _, step = part.partition(":")
            lo, _, hi = span.partition("..")
            try:
                lo_i, hi_i, step_i = int(lo), int(hi), int(step or 1)
            except ValueError:
                raise ValueError(f"{part!r}: a range is FROM..TO or FROM..TO:STEP with whole numbers") from None
            if step_i < 1 or hi_i < lo_i:
                raise ValueError(f"{part!r}: need FROM <= TO and STEP >= 1")
            if hi_i > MAX_COUNT:  # checked before the list is built: 4..200000000 would take gigabytes
                raise ValueError(f"{part!r}: node counts go up to {MAX_COUNT}")
            out.extend(range(lo_i, hi_i + 1, step_i))
        elif part:
            try:
                out.append(int(part))
            except ValueError:
                raise ValueError(f"{part!r} is not a whole number") from None
    if not out:
        raise ValueError(f"{text!r}: no node counts; write 20,30,40 or 4..64:4")
    return sorted(dict.fromkeys(out))


def _coerce(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_set(option: str) -> tuple[str, list]:
    """'consensus.block_size=50,100,200' -> ('consensus.block_size', [50, 100, 200])."""
    key, sep, values = option.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ValueError(f"--set {option!r}: write FIELD=VALUE[,VALUE...], e.g. consensus.block_size=50,100")
    return key.strip(), [_coerce(v.strip()) for v in values.split(",")]


def apply(scenario: Scenario, overrides: dict[str, Any], source: str) -> Scenario:
    data = scenario.model_dump()
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ScenarioError(f"{source}: --set {key}: {part!r} is not a section of the scenario")
            node = node[part]
        if parts[-1] not in node:
            raise ScenarioError(f"{source}: --set {key}: no field {parts[-1]!r}; fields here: {sorted(node)}")
        node[parts[-1]] = value
    return parse_scenario(data, f"{source} (with {', '.join(f'{k}={v}' for k, v in overrides.items())})")


@dataclass(frozen=True)
class Point:
    nodes: int
    seed: int
    params: tuple[tuple[str, Any], ...]  # the --set values of this run

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params)


def plan(scenario: Scenario, nodes: list[int], seeds: int, sets: list[tuple[str, list]]) -> list[Point]:
    combos = list(itertools.product(*[[(k, v) for v in values] for k, values in sets])) or [()]
    return [Point(n, scenario.seed + s, tuple(combo)) for combo in combos for n in nodes for s in range(seeds)]


def row(run: SimRun, point: Point, name: str) -> dict:
    """The figures of one run. All times are virtual (the simulated clock) but for
    ``wall_seconds``, the simulator's own wall-clock time; docs/benchmarking.md names
    every column, its unit and its clock."""
    from ..summary import reply_times, reference_chain

    s = summarize(run, name)
    n = s["nodes"]
    blocks = max(1, s["blocks"])
    by_type = s["messages"]["by_type"]
    bytes_by_type = s["bytes_by_type"]
    lat = s["latency_ms"]
    window = max(1e-9, (run.last_submit - run.first_submit) / 1e9)
    sim = max(1e-9, s["sim_seconds"])
    succ = s["committed_tx"] - s["rejected_tx"]
    # Caliper's throughput: successful transactions over the time from the first
    # submission to the last reply quorum (the summary's ``tps`` counts refused ones too).
    replies = reply_times(run)
    done = [replies[e.block.hash] for e in reference_chain(run) if e.block.hash in replies]
    busy = (max(done) - run.first_submit) / 1e9 if done else 0.0
    # The rate at which replies came out, first to last: follows the offered load below
    # saturation whatever the latency, and is the chain's capacity above it.
    drain = (max(done) - min(done)) / 1e9 if len(done) > 1 else 0.0
    msgs = s["messages"]
    out = {
        "name": name, "nodes": n, "f": s["f"], "seed": point.seed, **dict(point.params),
        "submitted": s["submitted_tx"], "succ": succ, "fail": s["submitted_tx"] - succ,
        "fail_refused": s["rejected_tx"], "fail_uncommitted": s["submitted_tx"] - s["committed_tx"],
        "send_rate_tps": round(s["submitted_tx"] / window, 2),
        "max_latency_ms": lat["max"], "min_latency_ms": s["latency_ms_min"], "avg_latency_ms": lat["mean"],
        "throughput_tps": round(succ / busy, 2) if busy > 0 else 0.0,
        "committed_tps": round(s["committed_tx"] / busy, 2) if busy > 0 else 0.0,
        "reply_rate_tps": round(s["committed_tx"] / drain, 2) if drain > 0 else 0.0,
        "p50_ms": lat["p50"], "p95_ms": lat["p95"], "p99_ms": lat["p99"],
        "blocks": s["blocks"], "view_changes": s["view_changes"],
        "consensus_messages_per_block": round(msgs["consensus"] / blocks, 2),
        "consensus_and_request_messages_per_block": round((msgs["consensus"] + msgs["client"]) / blocks, 2),
        "messages_per_block": round(msgs["total"] / blocks, 2),
        "bytes_per_block": round(s["bytes"] / blocks, 1),
        "cpu_s_per_node": round(s["cpu_ms_per_node"]["mean"] / 1000, 6),
        # Over the busy window, not sim_seconds: a run's virtual end waits on idle timers
        # (8 s or 25 s for the same 0.2 s of load), which would make bandwidth look like noise.
        "bandwidth_mbps_per_node": round(s["bytes"] * 8 / n / (busy if busy > 0 else sim) / 1e6, 3),
        "bytes_per_node": round(s["bytes"] / n, 1),
        "agreement": s["agreement"], "safety_violations": s["safety_violations"],
        "sim_seconds": s["sim_seconds"], "wall_seconds": round(run.wall_seconds, 3),
    }
    for kind in MESSAGE_TYPES:
        out[f"msgs_per_block.{kind}"] = round(by_type.get(kind, 0) / blocks, 2)
        out[f"bytes_per_block.{kind}"] = round(bytes_by_type.get(kind, 0) / blocks, 1)
    return out


def run_point(data: dict, point: Point, name: str) -> dict:
    """Simulate one point of a sweep and return its row. Takes the scenario as plain
    data (``Scenario.model_dump()``) so that it can run in a spawned worker process,
    which rebuilds the scenario; the run is a pure function of (scenario, seed), so
    the row is the same wherever it runs (but for its wall-clock seconds)."""
    from ..sim.run import simulate

    return row(simulate(Scenario.model_validate(data)), point, name)


def analytic_messages_per_block(n: int, checkpoint_interval: int) -> float:
    """PBFT's normal case per block: n-1 pre-prepares, (n-1)^2 prepares (every backup to
    every other replica), n(n-1) commits, and n(n-1)/K checkpoints."""
    return (n - 1) + (n - 1) ** 2 + n * (n - 1) + n * (n - 1) / checkpoint_interval


CONSENSUS_TYPES = ("pre-prepare", "prepare", "commit", "checkpoint")


def consensus_per_block(r: dict) -> float:
    return sum(r[f"msgs_per_block.{k}"] for k in CONSENSUS_TYPES)


def aggregate(rows: list[dict], param_keys: list[str]) -> list[dict]:
    """One row per (swept parameters, n): the mean of every numeric column and its
    spread (sample standard deviation; 0 for a single seed)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in param_keys) + (r["nodes"],), []).append(r)
    out = []
    for key, members in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0][:-1])) + (kv[0][-1],)):
        agg: dict = {"name": members[0]["name"], **dict(zip(param_keys, key[:-1])), "nodes": key[-1],
                     "seeds": len(members)}
        for col in members[0]:
            if col in agg or col == "seed":
                continue
            values = [m[col] for m in members]
            if not all(_numeric(v) for v in values):
                continue
            agg[col] = round(statistics.fmean(values), 4)
            agg[f"{col}.sd"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
        agg["agreement"] = all(m["agreement"] for m in members)
        out.append(agg)
    return out


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fit_quadratic(xs: list[float], ys: list[float]) -> tuple[float, float, float, float] | None:
    """Least-squares a*n^2 + b*n + c and the root-mean-square residual; None unless there
    are more distinct node counts than the fit's three parameters (three points fit
    any parabola exactly, and say nothing about it)."""
    import numpy as np
    if len(set(xs)) <= 3:
        return None
    a, b, c = np.polyfit(xs, ys, 2)
    fitted = np.polyval([a, b, c], xs)
    rms = float(np.sqrt(np.mean((np.asarray(ys) - fitted) ** 2)))
    return float(a), float(b), float(c), rms
