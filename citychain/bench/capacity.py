"""`citychain bench --capacity`: the saturation throughput at each node count.

For one n, a *probe* at offered rate R runs the scenario with ``workload.rate_tps = R``
and ``workload.transactions = max(the scenario's, ceil(R * window))`` (so every probe
offers at least ``window`` virtual seconds of load), then applies the criterion:

    holds(R)  <=>  reply_rate_tps >= 0.95 * send_rate_tps     (replies keep up with the load)
              and  committed >= 0.95 * submitted              (nothing much refused or lost)
              and  p95_ms <= latency bound                    (nobody waits too long)

``reply_rate_tps`` is committed transactions over the span from the first to the last
reply quorum: it follows the offered rate below saturation whatever the latency, and is
the rate the chain drains at above it. The search is deterministic (every probe is a
pure function of the scenario, the seed and R) and monotone: starting from the
scenario's rate it doubles R while the criterion holds (or halves it while it fails),
then bisects between the highest rate that held and the lowest that failed until they
are within ``tolerance`` of each other. The capacity is the Caliper throughput
(successful tx per virtual second) of the highest rate that held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RATIO = 0.95  # reply rate / send rate, and committed / submitted, at least this
MAX_DOUBLINGS = 16
MAX_HALVINGS = 10


@dataclass(frozen=True)
class Criterion:
    latency_bound_ms: float = 1000.0
    window_s: float = 1.0
    tolerance: float = 0.05
    ratio: float = RATIO

    def verdict(self, r: dict) -> tuple[bool, str]:
        """Whether the probe's row meets the criterion, and why not."""
        why = []
        if r["reply_rate_tps"] < self.ratio * r["send_rate_tps"]:
            why.append(f"reply rate {r['reply_rate_tps']:g} < {self.ratio:g} x send rate {r['send_rate_tps']:g}")
        if r["submitted"] - r["fail_uncommitted"] < self.ratio * r["submitted"]:
            why.append(f"{r['fail_uncommitted']} of {r['submitted']} never committed")
        if r["p95_ms"] > self.latency_bound_ms:
            why.append(f"p95 {r['p95_ms']:g} ms > {self.latency_bound_ms:g} ms")
        return not why, "; ".join(why)


def probe(data: dict, nodes: int, seed: int, rate: int, criterion: Criterion, name: str) -> dict:
    """One run at offered rate ``rate`` (tx/s, virtual) and its verdict."""
    from ..scenario import parse_scenario
    from .sweep import Point, row
    from ..sim.run import simulate

    data = {**data, "nodes": nodes, "seed": seed,
            "workload": {**data["workload"], "rate_tps": float(rate),
                         "transactions": max(data["workload"]["transactions"], math.ceil(rate * criterion.window_s))}}
    scenario = parse_scenario(data, f"{name} (capacity probe n={nodes} rate_tps={rate})")
    r = row(simulate(scenario), Point(nodes, seed, ()), name)
    ok, why = criterion.verdict(r)
    return {"offered_tps": rate, **r, "holds": ok, "why_not": why}


def search(data: dict, nodes: int, seed: int, start: int, criterion: Criterion, name: str) -> list[dict]:
    """Every probe of the search for one n, in the order made (``step`` numbers them)."""
    probes: list[dict] = []

    def run(rate: int) -> bool:
        p = probe(data, nodes, seed, rate, criterion, name)
        probes.append({"step": len(probes) + 1, **p})
        return p["holds"]

    lo = hi = None  # the highest rate that held, the lowest that failed
    rate = max(1, int(start))
    if run(rate):
        lo = rate
        for _ in range(MAX_DOUBLINGS):
            rate *= 2
            if not run(rate):
                hi = rate
                break
            lo = rate
    else:
        hi = rate
        for _ in range(MAX_HALVINGS):
            if rate <= 1:
                break
            rate = max(1, rate // 2)
            if run(rate):
                lo = rate
                break
            hi = rate
    if lo is not None and hi is not None:
        while hi - lo > max(1, criterion.tolerance * lo):
            mid = (lo + hi) // 2
            if run(mid):
                lo = mid
            else:
                hi = mid
    return probes


def summarize_search(probes: list[dict]) -> dict:
    """The capacity row of one n: the highest rate that held and its figures."""
    held = [p for p in probes if p["holds"]]
    failed = [p for p in probes if not p["holds"]]
    best = max(held, key=lambda p: p["offered_tps"]) if held else None
    first_fail = min(failed, key=lambda p: p["offered_tps"]) if failed else None
    return {
        "name": probes[0]["name"], "nodes": probes[0]["nodes"], "seed": probes[0]["seed"],
        "capacity_tps": best["throughput_tps"] if best else 0.0,
        "capacity_offered_tps": best["offered_tps"] if best else 0,
        "capacity_p50_ms": best["p50_ms"] if best else 0.0,
        "capacity_p95_ms": best["p95_ms"] if best else 0.0,
        "first_failing_offered_tps": first_fail["offered_tps"] if first_fail else "",
        "first_failing_reason": first_fail["why_not"] if first_fail else "never failed up to the search's limit",
        "probes": len(probes),
        "wall_seconds": round(sum(p["wall_seconds"] for p in probes), 3),
    }
