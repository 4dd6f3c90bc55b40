"""``citychain cluster compare``: one scenario on the running cluster and in the simulator.

The simulator's figures are only as believable as its model. This runs the cluster's
scenario (with the load's transaction count and rate) twice, on the real node processes
through the broker (``load.drive``) and in the simulator (``sim.run.simulate``), with the
simulator set up from what was measured on this machine a moment before:

- CPU: ``sign_us`` and ``verify_us`` from ``sim.calibrate.measure`` (the best of a few
  rounds: the machine is shared), ``execute_tx_us`` from ``sim.calibrate.measure_execute``
  on the scenario's own transactions; ``request_queue_ms`` is a policy and stays.
- Network: the broker's one-way delivery delay, half the round trip of timestamped
  messages between two client accounts through the cluster's broker (the operator may not
  publish; a client may publish on ``to/<other>/<itself>`` and read ``to/<itself>/+``).
  Every node is on one machine, so every link gets the same latency: its 10th percentile,
  with a jitter of twice the distance to the median (uniform jitter: the simulated median
  is then the measured one). The bandwidth is the broker's effective one for a 64 KiB
  message, from the extra round-trip time of a large message over a small one.

Both sides are reduced to the same figures (``side_from_cluster``, ``side_from_sim``):
the cluster counts publishes (a broadcast is one publish the broker fans out to n - 1
nodes), the simulator counts copies (one per receiver), so messages and bytes per block
are compared as copies of the consensus messages (pre-prepare, prepare, commit,
checkpoint), the figure PBFT's analytic count predicts (the nodes' status notices say
which publishes were broadcasts: ``counting.CountingTransport``); status notices and forwarded
requests, which only one side sends or counts, are shown apart.

Diagnostic simulator runs follow the prediction (``variants``), all without the
simulator's request-lane limit (``request_queue_ms``), which node processes do not have:
the same scenario with every CPU cost scaled so the simulated CPU per message equals
what the node processes really spent per message, with one CPU per node (the model's
assumption); with the costs scaled until the simulated p50 meets the cluster's (a
geometric search, ``fit_cpu_scale``: the cluster behaves like the simulator with its CPU
that many times slower); and with the measured costs also multiplied by n processes /
cores (every process waiting for all the others: an upper bound). They are not predictions (they use the
cluster's own measurement) but show how much of a gap the CPU model accounts for.
``compare_report`` turns the result into a table, JSON, a PNG and an HTML page, and
says per metric why the two differ.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import aiomqtt

from node.metrics import percentile

from ..bench.sweep import CONSENSUS_TYPES, Point, analytic_messages_per_block, apply, row
from ..scenario import MAX_MS, Scenario
from ..sim.calibrate import measure, measure_execute
from ..sim.run import simulate
from ..summary import reference_chain
from . import topics
from .control import Cluster
from .load import cluster_endpoint, drive
from .monitor import watch

# Kinds a node broadcasts (one publish, n - 1 copies through the broker); the rest go to one receiver.
BROADCAST_TYPES = ("pre-prepare", "prepare", "commit", "checkpoint", "view-change", "new-view")
PROBE_PINGS = 200
BIG_BYTES = 64 * 1024
BIG_PINGS = 40
LOADED_PING_S = 0.1  # one ping this often while the load runs
NO_REQUEST_LIMIT_MS = MAX_MS  # the largest a scenario allows: an hour's queue is no limit for a load of seconds
FIT_ROUNDS = 7
VARIANT_FITTED = "simulator, CPU scaled to the cluster's p50"
VARIANT_MEASURED = "simulator, CPU per message as measured"
VARIANT_SHARED = "simulator, CPU as measured, shared cores"


# ---- the broker's delivery delay -------------------------------------------------------

class Pinger:
    """Two client connections through the cluster's broker; ``ping`` times a round trip.

    Client A publishes on ``to/B/A``; B echoes each message back on ``to/A/B``. Both
    run in this process on one monotonic clock, and what is timed includes what a node
    pays per hop: the broker, two TCP sockets and an aiomqtt client at each end."""

    def __init__(self, cluster: Cluster):
        clients = [c["id"] for c in cluster.genesis_doc()["clients"]]
        if len(clients) < 2:
            raise ValueError("measuring the broker needs two client accounts; the chain has fewer")
        self.cluster, self.a, self.b = cluster, clients[0], clients[1]
        self.chain = cluster.chain_id
        self.count = 0

    async def __aenter__(self) -> "Pinger":
        def connect(user: str, tag: str) -> aiomqtt.Client:
            endpoint = cluster_endpoint(self.cluster, user, self.cluster.sites.get(user))
            return aiomqtt.Client(**endpoint.client_args(), identifier=f"{self.chain}/compare-{tag}",
                                  protocol=aiomqtt.ProtocolVersion.V5, timeout=10)

        self.ca, self.cb = connect(self.a, "probe-a"), connect(self.b, "probe-b")
        await self.ca.__aenter__()
        await self.cb.__aenter__()
        await self.ca.subscribe(topics.direct(self.chain, self.a, self.b), qos=1)
        await self.cb.subscribe(topics.direct(self.chain, self.b, self.a), qos=1)
        self.echo = asyncio.create_task(self._echo())
        self.replies = self.ca.messages
        await asyncio.sleep(0.2)
        await self.ping(16)  # the first round trip pays for the connection's start
        return self

    async def _echo(self) -> None:
        async for message in self.cb.messages:
            await self.cb.publish(topics.direct(self.chain, self.a, self.b), message.payload, qos=1)

    async def ping(self, size: int) -> float:
        """One round trip of a ``size``-byte message, in milliseconds."""
        self.count += 1
        tag = f"{self.count}:".encode()
        payload = tag + b"x" * max(0, size - len(tag))
        start = time.perf_counter()
        await self.ca.publish(topics.direct(self.chain, self.b, self.a), payload, qos=1)
        while True:
            message = await asyncio.wait_for(anext(self.replies), 10)
            if bytes(message.payload).startswith(tag):
                return (time.perf_counter() - start) * 1000

    async def __aexit__(self, *exc) -> None:
        self.echo.cancel()
        for client in (self.cb, self.ca):
            try:
                await client.__aexit__(None, None, None)
            except aiomqtt.MqttError:
                pass


def _stats(values: list[float]) -> dict:
    return {"min": round(min(values, default=0.0), 4), "p10": round(percentile(values, 10), 4),
            "p50": round(percentile(values, 50), 4), "p90": round(percentile(values, 90), 4),
            "mean": round(statistics.fmean(values), 4) if values else 0.0, "samples": len(values)}


async def measure_broker(pinger: Pinger, pings: int = PROBE_PINGS) -> dict:
    """One-way delay (half the round trip) of small messages, and the broker's effective
    bandwidth for a large one, on the idle cluster."""
    small = [await pinger.ping(64) / 2 for _ in range(pings)]
    big = [await pinger.ping(BIG_BYTES) / 2 for _ in range(BIG_PINGS)]
    extra_ms = max(1e-3, percentile(big, 50) - percentile(small, 50))
    return {"one_way_ms": _stats(small), "one_way_64KiB_ms": _stats(big),
            "bandwidth_mbps": round(BIG_BYTES * 8 / (extra_ms / 1000) / 1e6, 1)}


async def _ping_until(pinger: Pinger, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        try:
            out.append(await pinger.ping(64) / 2)
        except (asyncio.TimeoutError, aiomqtt.MqttError):
            pass
        try:
            await asyncio.wait_for(stop.wait(), LOADED_PING_S)
        except asyncio.TimeoutError:
            pass


# ---- calibration --------------------------------------------------------------------------

def calibrate_cpu(scenario: Scenario, rounds: int = 5) -> dict:
    """The scenario's ``cpu:`` block measured here: the best of ``rounds`` (other programs
    on the machine only ever make a measurement slower)."""
    signs, verifies = zip(*(measure(1000) for _ in range(rounds)))
    execute = min(measure_execute(scenario) for _ in range(rounds))
    return {"sign_us": round(min(signs), 2), "verify_us": round(min(verifies), 2),
            "execute_tx_us": round(execute, 2), "request_queue_ms": scenario.cpu.request_queue_ms}


def storage_commit_ms(directory: Path, commits: int = 30) -> float:
    """Milliseconds per durable SQLite commit (WAL, synchronous=FULL, as a node's store)
    on the cluster directory's file system: what each of a node's writes before it
    sends costs, and the simulator does not model."""
    with tempfile.TemporaryDirectory(dir=directory, prefix="compare-fsync-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "probe.sqlite", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
            start = time.perf_counter()
            for k in range(commits):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t VALUES (?, ?)", (k, os.urandom(512)))
                conn.execute("COMMIT")
            return round((time.perf_counter() - start) / commits * 1000, 4)
        finally:
            conn.close()


def simulator_settings(cpu: dict, broker: dict, scale: float = 1.0) -> dict:
    """The ``--set`` style overrides that give the simulator this machine's costs and delays."""
    one_way = broker["one_way_ms"]
    base = one_way["p10"]
    return {
        "cpu.sign_us": round(cpu["sign_us"] * scale, 3), "cpu.verify_us": round(cpu["verify_us"] * scale, 3),
        "cpu.execute_tx_us": round(cpu["execute_tx_us"] * scale, 3),
        "network.latency.local_ms": round(base, 4), "network.latency.default_ms": round(base, 4),
        "network.latency.links": [], "network.jitter_ms": round(max(0.0, 2 * (one_way["p50"] - base)), 4),
        "network.bandwidth_mbps": broker["bandwidth_mbps"],
    }


# ---- the CPU-bound ceiling ------------------------------------------------------------------

def signatures_per_block(n: int, block_tx: float, checkpoint_interval: int) -> dict:
    """Signatures made and checked over all n nodes for one block, PBFT normal case.

    Made: the primary's PRE-PREPARE, n - 1 PREPAREs (backups), n COMMITs, n/K CHECKPOINTs.
    Checked: every node checks each request once (its gateway on arrival, the primary
    when it is forwarded, the others inside the PRE-PREPARE: n * B), n - 1 backups check
    the PRE-PREPARE, each PREPARE is checked by the n - 1 others, so are the COMMITs and
    CHECKPOINTs. The clients' own signing happens on the clients' machines."""
    k = checkpoint_interval
    sign = 1 + (n - 1) + n + n / k
    verify = n * block_tx + (n - 1) + (n - 1) ** 2 + n * (n - 1) + n * (n - 1) / k
    return {"sign": sign, "verify": verify, "verify_requests": n * block_tx}


def cpu_ceiling(n: int, block_tx: float, cpu: dict, cores: int, checkpoint_interval: int) -> dict:
    """The most transactions per second ``cores`` cores can carry when the nodes' only
    work is their signatures (and, in ``with_execution``, executing every transaction on
    every node): signatures per block times their measured cost, over the cores."""
    block_tx = max(1.0, block_tx)
    sigs = signatures_per_block(n, block_tx, checkpoint_interval)
    sig_us = sigs["sign"] * cpu["sign_us"] + sigs["verify"] * cpu["verify_us"]
    exec_us = n * block_tx * cpu["execute_tx_us"]
    per_s = cores * 1e6
    return {"n": n, "cores": cores, "block_tx": round(block_tx, 2), "signs_per_block": round(sigs["sign"], 1),
            "verifies_per_block": round(sigs["verify"], 1), "signature_ms_per_block": round(sig_us / 1000, 3),
            "blocks_per_s": round(per_s / sig_us, 2), "max_tps": round(per_s / sig_us * block_tx, 1),
            "execute_ms_per_block": round(exec_us / 1000, 3),
            "max_tps_with_execution": round(per_s / (sig_us + exec_us) * block_tx, 1)}


# ---- both sides in the same figures ---------------------------------------------------------

def _per_block(by_type: dict, blocks: int, kinds) -> float:
    return sum(by_type.get(k, 0) for k in kinds) / max(1, blocks)


def side_from_cluster(load: dict, n: int, view_changes: int | None) -> dict:
    """The load row's figures, with publishes turned into copies: a broadcast reaches the n - 1
    other nodes, a point-to-point send one."""
    blocks = max(1, load["blocks"])
    pubs, pub_bytes = load.get("sent_by_type", {}), load.get("bytes_sent_by_type", {})
    copies = _copies(pubs, load.get("bcast_by_type"), n)
    copy_bytes = _copies(pub_bytes, load.get("bytes_bcast_by_type"), n)
    cpu_s = sum(p["cpu_s"] for p in load["resources"])
    # What the nodes received: every copy above, and each client request (and retry) once.
    received = sum(copies.values()) + load["submitted"] + load["retries"]
    return _side(load, n, blocks, copies, copy_bytes, view_changes, cpu_s / n, cpu_s / max(1, received) * 1e6) | {
        "publishes_per_block": round(sum(v for k, v in pubs.items() if k != "status") / blocks, 2),
        "status_notices_per_block": round(pubs.get("status", 0) / blocks, 2),
        "status_bytes_per_block": round(pub_bytes.get("status", 0) / blocks, 1),
        "peak_rss_mib_per_process": round(statistics.fmean([p["peak_rss_mib"] for p in load["resources"]]), 1)
        if load["resources"] else 0.0,
        "cpu_utilisation": round(cpu_s / max(1e-9, load["wall_seconds"]) / max(1, os.cpu_count() or 1), 3),
    }


def _copies(published: dict, broadcast: dict | None, n: int) -> dict:
    """Per type: the point-to-point publishes once, the broadcasts n - 1 times (nodes that did not
    say which were broadcasts: every publish of a broadcast type counts as a broadcast)."""
    out = {}
    for kind, total in published.items():
        if kind == "status":
            continue
        if broadcast is None:
            fanned = total if kind in BROADCAST_TYPES else 0
        else:
            fanned = min(total, broadcast.get(kind, 0))
        out[kind] = total - fanned + fanned * (n - 1)
    return out


def side_from_sim(sim: dict, n: int) -> dict:
    blocks = max(1, sim["blocks"])
    copies = {k.split(".", 1)[1]: v * blocks for k, v in sim.items() if k.startswith("msgs_per_block.")}
    copy_bytes = {k.split(".", 1)[1]: v * blocks for k, v in sim.items() if k.startswith("bytes_per_block.")}
    pubs = {k: v / (n - 1) if k in BROADCAST_TYPES else v for k, v in copies.items() if k != "request"}
    # A request copy is a client's send (one, or one to every node when it retries) or a node's forward.
    pubs["request"] = max(0, copies.get("request", 0) - sim["submitted"] - sim["retries"] * n)
    cpu_s = sim["cpu_s_per_node"] * n
    received = sum(copies.values())
    return _side(sim, n, blocks, copies, copy_bytes, sim["view_changes"], sim["cpu_s_per_node"],
                 cpu_s / max(1, received) * 1e6) | {
        "publishes_per_block": round(sum(pubs.values()) / blocks, 2),
        "status_notices_per_block": 0.0, "status_bytes_per_block": 0.0}


def _side(r: dict, n: int, blocks: int, copies: dict, copy_bytes: dict, view_changes, cpu_s_per_node: float,
          cpu_us_per_message: float) -> dict:
    committed = r["answered"]
    return {
        "throughput_tps": r["throughput_tps"], "send_rate_tps": r["send_rate_tps"],
        "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "p99_ms": r["p99_ms"],
        "max_latency_ms": r["max_latency_ms"], "avg_latency_ms": r["avg_latency_ms"],
        "messages_per_block": round(_per_block(copies, blocks, CONSENSUS_TYPES), 2),
        "bytes_per_block": round(_per_block(copy_bytes, blocks, CONSENSUS_TYPES), 1),
        "messages_per_block_by_type": {k: round(v / blocks, 2) for k, v in sorted(copies.items()) if v},
        "bytes_per_block_by_type": {k: round(v / blocks, 1) for k, v in sorted(copy_bytes.items()) if v},
        "blocks": r["blocks"], "committed_tx": committed,
        "tx_per_block": round(committed / blocks, 2),
        "ms_per_block": round(committed / max(1e-9, r["throughput_tps"]) / blocks * 1000, 2),
        "view_changes": view_changes, "retries": r.get("retries", 0),
        "cpu_s_per_node": round(cpu_s_per_node, 4), "cpu_us_per_message": round(cpu_us_per_message, 2),
    }


def _sim_row(spec: Scenario, source: str, overrides: dict) -> dict:
    """The bench row of one simulated run, with what the cluster's load row also says: how many
    transactions were submitted and answered (committed: f + 1 nodes executed them)."""
    tuned = apply(spec, overrides, source)
    run = simulate(tuned)
    out = row(run, Point(tuned.nodes, tuned.seed, ()), spec.chain.id)
    # The cluster's load counts answered transactions, refused by their app or not; the bench
    # row's throughput_tps counts successful ones only (Caliper), so compare like with like.
    out["throughput_tps"] = out["committed_tps"]
    out["submitted"] = run.submitted
    out["answered"] = sum(len(e.block.requests) for e in reference_chain(run))
    out["retries"] = run.metrics.retries
    return out


def fit_cpu_scale(run, target_p50: float, base_p50: float, most: float, say=lambda text: None,
                  rounds: int = FIT_ROUNDS) -> dict | None:
    """The simulated run, ``run(scale)``, whose p50 comes nearest the cluster's, searching the CPU
    scale geometrically between 1 and ``most`` (latency grows with the scale); within 10 % stops.
    None when the simulator is already as slow as the cluster."""
    if target_p50 <= base_p50:
        return None
    lo, hi, best = 1.0, max(most, 2.0), None
    for _ in range(rounds):
        mid = (lo * hi) ** 0.5
        say(f"simulating: {VARIANT_FITTED} (trying x{mid:.1f})")
        side = run(mid)
        if best is None or abs(side["p50_ms"] - target_p50) < abs(best["p50_ms"] - target_p50):
            best = side
        if abs(side["p50_ms"] / target_p50 - 1) <= 0.10:
            break
        lo, hi = (mid, hi) if side["p50_ms"] < target_p50 else (lo, mid)
    return best


# ---- the comparison ---------------------------------------------------------------------------

async def _views(cluster: Cluster, seconds: float = 2.5) -> dict[str, int]:
    """Each node's installed view, from its status notices."""
    views: dict[str, int] = {}
    wanted = {i for p in cluster.processes if p.alive() for i in p.ids}

    def keep(body: dict, _at: float) -> bool:
        if body.get("role") == "consensus":
            views[body["node"]] = body.get("installed_view", body.get("view", 0))
        return wanted <= set(views)

    await watch(cluster_endpoint(cluster, "operator", cluster.brokers[0].site), cluster.genesis_doc(), keep, seconds,
                identifier=f"{cluster.chain_id}/compare-views")
    return views


async def measure_cluster(cluster: Cluster, spec: Scenario, progress=None) -> tuple[dict, dict, int | None]:
    """The broker's delays (idle, then during the load) and the load itself."""
    before = await _views(cluster)
    async with Pinger(cluster) as pinger:
        broker = await measure_broker(pinger)
        stop, loaded = asyncio.Event(), []
        probe = asyncio.create_task(_ping_until(pinger, stop, loaded))
        try:
            load = await drive(cluster, spec, progress)
        finally:
            stop.set()
            await probe
    broker["one_way_under_load_ms"] = _stats(loaded)
    after = await _views(cluster)
    view_changes = max(after.values()) - max(before.values()) if before and after else None
    return broker, load, view_changes


def compare(cluster: Cluster, spec: Scenario, source: str, progress=None, say=lambda text: None) -> dict:
    """Measure, load, simulate; the whole comparison as one JSON-able dict."""
    n = spec.nodes
    cores = os.cpu_count() or 1
    say("calibrating the CPU model (sign, verify, execute) and the store's commits")
    cpu = calibrate_cpu(spec)
    commit_ms = storage_commit_ms(cluster.directory)
    say("measuring the broker, then driving the load")
    broker, load, view_changes = asyncio.run(measure_cluster(cluster, spec, progress))
    settings = simulator_settings(cpu, broker)
    say("simulating the same scenario")
    sim = _sim_row(spec, source, settings)
    cluster_side = side_from_cluster(load, n, view_changes)
    sim_side = side_from_sim(sim, n)

    # Diagnostics: the CPU model charged what the node processes really spent per message.
    scale = max(1.0, cluster_side["cpu_us_per_message"] / max(1e-9, sim_side["cpu_us_per_message"]))
    processes = max(1, len(load["resources"]))
    share = max(1.0, processes / cores)

    def diagnostic(factor: float) -> dict:
        # A node process refuses no request for waiting (it runs with NO_COSTS: no request-lane limit),
        # so the diagnostics lift the simulator's: with costs this high it would refuse, and clients retry.
        tuned = simulator_settings(cpu, broker, factor) | {"cpu.request_queue_ms": NO_REQUEST_LIMIT_MS}
        return side_from_sim(_sim_row(spec, source, tuned), n) | {"cpu_scale": round(factor, 3)}

    variants = {}
    say(f"simulating: {VARIANT_MEASURED} (CPU costs x{scale:.1f})")
    variants[VARIANT_MEASURED] = diagnostic(scale)
    fitted = fit_cpu_scale(diagnostic, cluster_side["p50_ms"], sim_side["p50_ms"], scale * share * 2, say)
    if fitted is not None:
        variants[VARIANT_FITTED] = fitted
    say(f"simulating: {VARIANT_SHARED} (CPU costs x{scale * share:.1f})")
    variants[VARIANT_SHARED] = diagnostic(scale * share)

    k = spec.consensus.checkpoint_interval
    return {
        "scenario": source, "chain": cluster.chain_id, "nodes": n, "f": (n - 1) // 3,
        "transactions": spec.workload.transactions, "rate_tps": spec.workload.rate_tps,
        "retry_ms": spec.workload.retry_ms, "block_size": spec.consensus.block_size, "batch_timeout_ms": spec.consensus.batch_timeout_ms,
        "view_change_timeout_ms": spec.consensus.view_change_timeout_ms, "checkpoint_interval": k,
        "cores": cores, "node_processes": processes,
        "calibration": {"cpu": cpu, "storage_commit_ms": commit_ms, "broker": broker},
        "simulator_settings": settings,
        "cluster": cluster_side, "simulator": sim_side, "variants": variants,
        "analytic_messages_per_block": round(analytic_messages_per_block(n, k), 1),
        "ceiling": {"full_blocks": cpu_ceiling(n, spec.consensus.block_size, cpu, cores, k),
                    "as_run": cpu_ceiling(n, cluster_side["tx_per_block"], cpu, cores, k)},
        "resources": load["resources"],
        "raw": {"cluster": load, "simulator": sim},
    }
