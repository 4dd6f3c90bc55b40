"""The run summary: one JSON object a machine reads, and the table a person reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.quorum import quorum
from node.history import CommittedTimes
from node.metrics import percentile_of

from node.checker import ChainChecker

from .audit import RunAudit, compare_chains
from .sim.run import SimRun

BENIGN = {"stale", "duplicate", "duplicate-request", "old-view", "stale-view-change", "stale-new-view"}
# (late or repeated copies, client retransmissions: expected in a healthy run)


AUDIT_CHUNK = 32  # heights read from every ledger in turn: fewer than the decoded blocks a HistoryStore shares


def audit_run(run: SimRun) -> RunAudit:
    """Safety over every honest node (crashed ones included: a prefix is fine), and
    agreement over the honest nodes running at the end. What ``audit_chains`` judges,
    read a few heights at a time from every ledger in turn, so that a ledger spilled to
    its run's store (node/history.py) is decoded once for all the nodes holding it, and
    never held whole."""
    honest = run.honest
    checker = ChainChecker(run.membership, run.genesis.hash, set(run.genesis.replicas))
    ledgers = {nid: run.nodes[nid].ledger for nid in honest}
    hashes: dict[str, list[str]] = {nid: [] for nid in honest}
    problems: dict[str, list[str]] = {nid: [] for nid in honest}
    top = max((ledger.height for ledger in ledgers.values()), default=0)
    for start in range(0, top, AUDIT_CHUNK):
        for nid, ledger in ledgers.items():
            mine = hashes[nid]
            for i, e in enumerate(ledger.entries[start:start + AUDIT_CHUNK], start=start + 1):
                problems[nid].extend(checker.check_entry(i, mine[-1] if mine else run.genesis.hash, e.block,
                                                         e.certificate))
                mine.append(e.block.hash)
    invalid = {nid: p for nid, p in problems.items() if p}
    agreement, violations = compare_chains(hashes)
    report = RunAudit(len(ledgers), {nid: len(h) for nid, h in hashes.items()}, agreement and not invalid,
                      violations, invalid)
    up = {nid: hashes[nid] for nid in honest if not run.nodes[nid].down}
    agreement, _ = compare_chains(up)
    report.agreement = agreement and not report.invalid
    return report


def reply_times(run: SimRun) -> dict[str, int]:
    """Per block hash: when f + 1 nodes had executed that block (a client's quorum of
    matching replies, section 4.1)."""
    return run.metrics.reply_times(run.f)


def reference_chain(run: SimRun):
    honest_up = [run.nodes[n] for n in run.honest if not run.nodes[n].down] or [run.nodes[n] for n in run.honest]
    return max(honest_up, key=lambda node: node.ledger.height).ledger.entries


@dataclass
class ReferenceRead:
    """What the summary takes from the reference chain, read once (a spilled ledger is
    decoded as it is read: node/history.py)."""
    committed_at: CommittedTimes  # tx -> when f + 1 nodes had executed it, in the run's store
    blocks: int = 0
    head_hash: str = ""
    committed: int = 0
    rejected: int = 0
    rejections: dict = field(default_factory=dict)  # app.op -> {"count", "example"}
    last_reply: int | None = None  # the latest reply quorum of its blocks (a block without one: the first submission)


def read_reference(run: SimRun) -> ReferenceRead:
    replies = reply_times(run)
    out = ReferenceRead(CommittedTimes(run.metrics.history), head_hash=run.genesis.hash)
    rejections = out.rejections
    for e in reference_chain(run):
        block = e.block
        out.blocks += 1
        out.head_hash = block.hash
        out.committed += len(block.requests)
        for req, receipt in zip(block.requests, e.receipts):
            if not receipt.ok:
                out.rejected += 1
                key = f"{req.message.app}.{req.message.op}"
                entry = rejections.setdefault(key, {"count": 0, "example": receipt.reason})
                entry["count"] += 1
        done = replies.get(block.hash)
        reply = run.first_submit if done is None else done
        out.last_reply = reply if out.last_reply is None else max(out.last_reply, reply)
        if done is not None:
            out.committed_at.put_many((r.digest, done) for r in block.requests)
    return out


def latency_ms(committed_at: CommittedTimes) -> tuple[dict, float]:
    """The summary's ``latency_ms`` and ``latency_ms_min``, read from the store a value at
    a time (the same floats as from a list of every latency in ms)."""
    count = committed_at.index_latencies()
    if not count:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}, 0.0
    nth = lambda i: committed_at.nth_latency(i) / 1e6  # noqa: E731
    mean = sum(v / 1e6 for v in committed_at.latencies()) / count
    return ({"p50": round(percentile_of(count, nth, 50), 3), "p95": round(percentile_of(count, nth, 95), 3),
             "p99": round(percentile_of(count, nth, 99), 3), "max": round(nth(count - 1), 3),
             "mean": round(mean, 3)}, round(nth(0), 3))


def liveness(run: SimRun, committed_at: CommittedTimes) -> dict:
    """Is every submitted transaction answered (f + 1 matching replies), each within the
    bound of the later of its submission and the last fault's end? Every transaction
    counts, not only those caught by a fault: Byzantine nodes with no timeline (silent
    primaries in a row) must not pass unjudged. ``recovery_ms`` is the worst such wait.
    ``committed_at``: tx -> its reply quorum (``read_reference``)."""
    heal = run.plan.last_heal
    uncommitted = committed_at.uncommitted()
    worst_tx, wait = committed_at.worst_wait(heal)
    recovery_ms = round(max(wait, 0) / 1e6, 3) if worst_tx else 0.0
    bound_ms = run.scenario.run.liveness_bound_s * 1000
    return {"healed_at_ms": round(heal / 1e6, 3), "uncommitted": uncommitted,
            "recovery_ms": recovery_ms, "worst_tx": worst_tx, "bound_ms": bound_ms,
            "ok": not uncommitted and recovery_ms <= bound_ms}


DISRUPTIVE = ("crash", "pause", "partition", "cut")


def recovery(run: SimRun) -> list[dict]:
    """Per fault that can stop progress (a crash, pause, partition or cut): how long from
    the fault itself until the chain answered (f + 1 matching replies) a transaction
    submitted at or after it. ``recovered_ms`` is null if none was."""
    faults = [(t, what) for t, what in run.timeline if what.split(" ", 1)[0] in DISRUPTIVE]
    if not faults:
        return []
    replies = reply_times(run)
    answered_at = {}
    for tx, blocks in run.metrics.tx_blocks.items():
        times = [replies[b] for b in blocks if b in replies]
        if times:
            answered_at[tx] = min(times)
    out = []
    for t, what in faults:
        after = [answered_at[tx] for tx, sub in run.metrics.submitted.items() if sub >= t and tx in answered_at]
        out.append({"at_ms": round(t / 1e6, 3), "fault": what,
                    "recovered_ms": round((min(after) - t) / 1e6, 3) if after else None})
    return out


def explain_liveness(run: SimRun, live: dict, status: dict) -> str | None:
    """Why transactions went unanswered, in a sentence, or None if liveness holds."""
    if live["ok"]:
        return None
    n, f = len(run.genesis.replicas), run.f
    q = quorum(n)
    silent = {nid: st["role"] if st["up"] else "down" for nid, st in status.items()
              if nid in run.genesis.replicas and (not st["up"] or st["role"].startswith("byzantine"))}
    working = n - len(silent)
    if working < q:
        return (f"{live['uncommitted']} transactions were never answered: only {working} of {n} nodes could be "
                f"counted on ({', '.join(f'{k} {v}' for k, v in sorted(silent.items()))}), fewer than the quorum of {q} that must prepare "
                f"and commit each block; PBFT tolerates f = {f} faulty nodes, so no block can commit "
                f"(safe, but not live)")
    if live["uncommitted"]:
        return (f"{live['uncommitted']} transactions were never answered by f + 1 = {f + 1} matching replies "
                f"before the run ended (`citychain run --out DIR` then `citychain why DIR TX` says what was missing)")
    return (f"a transaction waited {live['recovery_ms']:.0f} ms after the later of its submission and the last "
            f"fault, more than the liveness bound of {live['bound_ms']:.0f} ms")


def node_status(run: SimRun) -> dict:
    top = max((run.nodes[n].ledger.height for n in run.honest), default=0)
    out = {}
    for nid, node in run.nodes.items():
        byz = run.plan.byzantine.get(nid)
        r = node.replica
        role = f"byzantine:{byz.behaviour}" if byz else "observer" if nid not in run.genesis.replicas else "honest"
        out[nid] = {"role": role, "up": not node.down,
                    "height": node.ledger.height, "view": r.view, "in_view": r.active,
                    "caught_up": node.ledger.height == top,
                    "blocks_fetched": node.syncer.fetched_blocks if node.syncer else 0}
    return out


CONSENSUS_KINDS = ("pre-prepare", "prepare", "commit", "checkpoint", "view-change", "new-view", "new-view-request",
                   "block-request", "block-reply")
BACKGROUND_KINDS = ("fetch", "blocks")  # state transfer: a node asking its peers for blocks it may lack
CLIENT_KINDS = ("request",)


def messages_summary(by_type) -> dict:
    """Copies sent: in all, by type, and split into consensus, background (state-transfer
    polling: a one-transaction run at n = 4 sends 48 of these besides its 24 consensus
    messages) and client requests."""
    return {"total": sum(by_type.values()),
            "consensus": sum(by_type.get(k, 0) for k in CONSENSUS_KINDS),
            "background": sum(by_type.get(k, 0) for k in BACKGROUND_KINDS),
            "client": sum(by_type.get(k, 0) for k in CLIENT_KINDS),
            "by_type": dict(sorted(by_type.items()))}


def equivocation_summary(metrics, drops) -> dict:
    """A primary that sent two different blocks for one (view, seq), seen on the wire, and
    the conflicting PRE-PREPAREs the honest nodes refused (a backup that was only ever told
    one version cannot notice: so both counts)."""
    seen = metrics.equivocations()
    return {"conflicting_pre_prepares": len(seen),
            "equivocators": sorted({p for p, _, _, _ in seen}),
            "refused_as_conflicting": drops.get("conflicting-pre-prepare", 0),
            "examples": [{"primary": p, "view": v, "seq": s, "digests": [d[:16] for d in ds]}
                         for p, v, s, ds in seen[:5]]}


def summarize(run: SimRun, scenario_name: str, report: RunAudit | None = None) -> dict:
    report = report or audit_run(run)
    n = len(run.genesis.replicas)
    f = run.f
    metrics = run.metrics
    ref = read_reference(run)
    latency, latency_min = latency_ms(ref.committed_at)
    committed, rejected, rejections = ref.committed, ref.rejected, ref.rejections
    busy = (run.first_submit if ref.last_reply is None else ref.last_reply) - run.first_submit
    drops = metrics.drops_by_reason()
    live = liveness(run, ref.committed_at)
    status = node_status(run)
    live["reason"] = explain_liveness(run, live, status)
    recoveries = recovery(run)
    known = [r["recovered_ms"] for r in recoveries if r["recovered_ms"] is not None]
    return {
        "scenario": scenario_name,
        "chain_id": run.genesis.chain_id,
        "nodes": n,
        "f": f,
        "quorum": quorum(n),
        "seed": run.scenario.seed,
        "submitted_tx": run.submitted,
        "committed_tx": committed,
        "rejected_tx": rejected,
        "rejections": dict(sorted(rejections.items())),
        "blocks": ref.blocks,
        "tps": round(committed / (busy / 1e9), 2) if busy > 0 else 0.0,
        "latency_ms": latency,
        "latency_ms_min": latency_min,
        "messages": messages_summary(metrics.messages),
        "bytes": sum(metrics.bytes.values()),
        "bytes_by_type": dict(sorted(metrics.bytes.items())),
        "messages_lost": metrics.lost,
        "messages_to_crashed_nodes": metrics.lost_to_crash,
        "dropped": dict(sorted(drops.items())),
        "equivocation": equivocation_summary(metrics, drops),
        "rejected_messages": sum(v for k, v in drops.items() if k not in BENIGN),
        "client_retries": metrics.retries,
        "view_changes": len(metrics.views_installed),
        "faulty_nodes": sorted(set(run.plan.byzantine) | run.faulted),
        "faults": [{"at_ms": round(t / 1e6, 3), "event": what} for t, what in run.timeline],
        "agreement": report.agreement,
        "safety_violations": len(report.safety_violations) + sum(len(p) for p in report.invalid.values()),
        "safety_detail": report.safety_violations[:20],
        "liveness": live,
        "recovery_ms": max(known) if known else None,
        "recovery": recoveries,
        "head": {"height": ref.blocks, "hash": ref.head_hash},
        "node_status": status,
        "cpu_ms_per_node": {"mean": round(sum(metrics.cpu_ns.values()) / max(1, n) / 1e6, 3),
                            "max": round(max(metrics.cpu_ns.values(), default=0) / 1e6, 3)},
        "sim_seconds": round((max(run.end_ns, run.first_submit) - run.first_submit) / 1e9, 6),
        "wall_seconds": round(run.wall_seconds, 3),
    }
