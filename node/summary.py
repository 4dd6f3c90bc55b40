"""The run summary: one JSON object a machine reads, and the table a person reads."""

from __future__ import annotations

from .audit import AuditReport, audit_chains
from .metrics import percentile
from .sim.run import SimRun


def audit_run(run: SimRun) -> AuditReport:
    chains = {nid: [(e.block, e.certificate) for e in node.ledger.entries] for nid, node in run.nodes.items()}
    return audit_chains(chains, run.membership, run.genesis.hash, set(run.genesis.replicas))


def tx_latencies_ns(run: SimRun, f: int) -> dict[str, int]:
    """Per committed tx: from submission until f + 1 nodes executed it (a client's reply quorum)."""
    reference = max(run.nodes.values(), key=lambda n: n.ledger.height)
    reply_at = {}
    for height, times in run.metrics.executed_at.items():
        if len(times) > f:
            reply_at[height] = sorted(times)[f]
    latencies = {}
    for entry in reference.ledger.entries:
        done = reply_at.get(entry.block.height)
        if done is None:
            continue
        for r in entry.block.requests:
            submitted = run.metrics.submitted.get(r.digest)
            if submitted is not None:
                latencies[r.digest] = done - submitted
    return latencies


def summarize(run: SimRun, scenario_name: str, report: AuditReport | None = None) -> dict:
    report = report or audit_run(run)
    n = len(run.genesis.replicas)
    f = (n - 1) // 3
    metrics = run.metrics
    reference = max(run.nodes.values(), key=lambda node: node.ledger.height)
    entries = reference.ledger.entries
    latencies = tx_latencies_ns(run, f)
    ms = [v / 1e6 for v in latencies.values()]
    committed = sum(len(e.block.requests) for e in entries)
    rejected = sum(1 for e in entries for r in e.receipts if not r.ok)
    window_ns = (max(run.end_ns, run.first_submit + 1) - run.first_submit)
    last_reply = max((run.metrics.executed_at[e.block.height][min(f, len(run.metrics.executed_at[e.block.height]) - 1)]
                      for e in entries), default=run.first_submit)
    busy = last_reply - run.first_submit
    drops = metrics.drops_by_reason()
    return {
        "scenario": scenario_name,
        "chain_id": run.genesis.chain_id,
        "nodes": n,
        "f": f,
        "seed": run.scenario.seed,
        "submitted_tx": run.submitted,
        "committed_tx": committed,
        "rejected_tx": rejected,
        "blocks": len(entries),
        "tps": round(committed / (busy / 1e9), 2) if busy > 0 else 0.0,
        "latency_ms": {
            "p50": round(percentile(ms, 50), 3), "p95": round(percentile(ms, 95), 3),
            "p99": round(percentile(ms, 99), 3), "max": round(max(ms, default=0.0), 3),
            "mean": round(sum(ms) / len(ms), 3) if ms else 0.0,
        },
        "messages": {"total": sum(metrics.messages.values()), "by_type": dict(sorted(metrics.messages.items()))},
        "bytes": sum(metrics.bytes.values()),
        "bytes_by_type": dict(sorted(metrics.bytes.items())),
        "messages_lost": metrics.lost,
        "dropped": dict(sorted(drops.items())),
        "view_changes": 0,
        "agreement": report.agreement,
        "safety_violations": len(report.safety_violations) + sum(len(p) for p in report.invalid.values()),
        "head": {"height": len(entries), "hash": reference.ledger.head_hash},
        "cpu_ms_per_node": {"mean": round(sum(metrics.cpu_ns.values()) / max(1, n) / 1e6, 3),
                            "max": round(max(metrics.cpu_ns.values(), default=0) / 1e6, 3)},
        "sim_seconds": round(window_ns / 1e9, 6),
        "wall_seconds": round(run.wall_seconds, 3),
    }
