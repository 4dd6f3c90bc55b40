"""``citychain cluster load``: the scenario's workload as signed client requests through the broker.

Each workload client connects as itself (its own broker user: the ACL lets it
publish only its own requests) and sends each request to its gateway node at the
time the workload schedules it, as the simulator does; a client not answered
within ``retry_ms`` sends it to every node (PBFT section 4.1), with the same
back-off. A transaction is answered when f + 1 consensus nodes report, in signed
status notices, that they executed the same block holding it: the latency is from
submission to that moment, measured on this machine's monotonic clock.

The report has the columns of ``citychain bench``, plus the CPU time and the peak
memory of every node process while the load ran (psutil and /proc).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import psutil

from node.assembly import chain_apps, consensus_members
from node.codec import encode
from node.genesis import read_genesis
from node.metrics import percentile
from node.signing import Signer

from ..layout import place_clients, place_nodes
from ..scenario import Scenario
from ..sim.run import rng_for
from ..sim.workload import submissions
from . import topics
from .control import Cluster, ClusterError
from .broker import Credentials
from .endpoint import Endpoint
from .link import ClientLink
from .process import load_private_key
from .launch import CREDENTIALS
from .monitor import watch


@dataclass
class Tracker:
    """Which transactions are answered: f + 1 consensus nodes (by the genesis, not by what
    a notice says of itself) reported executing the same block with the same contents.

    A report is the triple (block hash, its transactions, those rejected): a faulty node
    reporting a real block's hash with other transactions makes a different triple, which
    no honest node matches, so it never reaches f + 1 (PBFT's matching replies)."""

    f: int
    members: frozenset[str] = frozenset()  # the consensus nodes
    submitted: dict[str, float] = field(default_factory=dict)  # tx -> submit time (loop clock, s)
    answered: dict[str, float] = field(default_factory=dict)  # tx -> answer time
    rejected: set[str] = field(default_factory=set)
    reporters: dict[tuple, set[str]] = field(default_factory=dict)  # (hash, txs, rejected) -> nodes
    first: dict[str, dict] = field(default_factory=dict)  # node -> its first notice during the load
    last: dict[str, dict] = field(default_factory=dict)  # node -> its latest notice
    heights: set[int] = field(default_factory=set)
    malformed: int = 0  # signed notices of the wrong shape (from a faulty node)

    def on_notice(self, body: dict, at: float) -> bool:
        node = body.get("node")
        if node not in self.members:
            return False
        blocks = body.get("blocks", [])
        if not isinstance(blocks, list) or not all(_block_report(b) for b in blocks):
            self.malformed += 1
            return False
        self.first.setdefault(node, body)
        self.last[node] = body
        for block in blocks:
            report = (block["hash"], tuple(block["txs"]), tuple(block["rejected"]))
            nodes = self.reporters.setdefault(report, set())
            nodes.add(node)
            if len(nodes) == self.f + 1:
                self.heights.add(block["height"])
                for tx in report[1]:
                    if tx in self.submitted and tx not in self.answered:
                        self.answered[tx] = at
                self.rejected.update(report[2])
        return False


def _block_report(block) -> bool:
    return (isinstance(block, dict) and isinstance(block.get("hash"), str) and isinstance(block.get("height"), int)
            and all(isinstance(block.get(k), list) and all(isinstance(t, str) for t in block[k])
                    for k in ("txs", "rejected")))


@dataclass
class ProcessSample:
    pid: int
    ids: list[str]
    cpu_start: float
    cpu_s: float = 0.0
    peak_rss: int = 0

    def sample(self) -> None:
        try:
            info = psutil.Process(self.pid).memory_info()
            self.peak_rss = max(self.peak_rss, info.rss)
        except psutil.Error:
            pass


def _reset_peak(pid: int) -> None:
    """Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM) to its current RSS."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss(pid: int) -> int | None:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except psutil.Error:
        return 0.0


async def drive(cluster: Cluster, scenario: Scenario, progress=None) -> dict:
    """Run the workload against the cluster; the result row (bench columns) and resources."""
    doc, _hash = read_genesis(cluster.genesis_dir / "genesis.json")
    placed = place_clients(scenario, place_nodes(scenario))
    if doc["chain_id"] != scenario.chain.id or [c.id for c in placed] != [c["id"] for c in doc["clients"]]:
        raise ClusterError("the scenario does not match this cluster's genesis (another scenario or node count); "
                           "load the scenario the cluster was started with")
    replicas = consensus_members(doc)
    f = (len(replicas) - 1) // 3
    tracker = Tracker(f, frozenset(replicas))
    chain = doc["chain_id"]
    spec = scenario.workload
    cluster.loads += 1
    cluster.save()
    # The clients' own keys, as `cluster up` wrote them (a cluster's keys are secret, not derived).
    signers = {c.id: Signer(c.id, load_private_key(cluster.client_root / c.id / "key.pem"), chain) for c in placed}
    org_keys = {o["id"]: o["x25519"] for o in doc["organisations"]}
    start_ns = time.time_ns()  # request timestamps: distinct across loads
    stream = list(submissions(spec, placed, signers, rng_for(scenario.seed, f"cluster-load/{cluster.loads}"),
                              chain_apps(doc), org_keys, start=start_ns))
    loop = asyncio.get_running_loop()
    samples = [ProcessSample(p.pid, p.ids, _cpu_seconds(p.pid)) for p in cluster.processes if p.alive()]
    for s in samples:
        _reset_peak(s.pid)
    operator = cluster_endpoint(cluster, "operator", cluster.brokers[0].site)
    done = asyncio.Event()

    def on_notice(body: dict, at: float) -> bool:
        tracker.on_notice(body, at)
        if progress:
            progress(len(tracker.answered), len(stream))
        if len(tracker.answered) >= len(stream):
            done.set()
        return False

    drain = scenario.run.drain_s
    watcher = asyncio.create_task(watch(operator, doc, on_notice, timeout=1e9, identifier=f"{chain}/load-watch"))
    await asyncio.sleep(0.3)  # the watcher subscribed before the first request leaves

    clients: dict[str, ClientLink] = {}
    try:
        for c in placed:
            clients[c.id] = ClientLink(cluster_endpoint(cluster, c.id, cluster.sites.get(c.id)), f"{chain}/{c.id}")
        await asyncio.wait_for(asyncio.gather(*(link.connected.wait() for link in clients.values())), 30)

        async def sampler() -> None:
            while True:
                for s in samples:
                    s.sample()
                await asyncio.sleep(0.5)

        sampling = asyncio.create_task(sampler())
        t0 = loop.time()
        retry_s = spec.retry_ms / 1000
        retries = 0

        async def resend(sub, tries: int) -> None:
            nonlocal retries
            await asyncio.sleep(retry_s * (2 ** tries))
            digest = sub.envelope.digest
            if digest in tracker.answered:
                return
            retries += 1
            clients[sub.client.id].send(topics.request(chain, sub.client.id), encode(sub.envelope))
            if tries + 1 < spec.max_retries:
                await resend(sub, tries + 1)

        retry_tasks = []
        for sub in stream:
            delay = t0 + (sub.at - start_ns) / 1e9 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tracker.submitted[sub.envelope.digest] = loop.time()
            clients[sub.client.id].send(topics.direct(chain, sub.client.gateway, sub.client.id), encode(sub.envelope))
            if spec.max_retries:
                retry_tasks.append(asyncio.create_task(resend(sub, 0)))
        last_submit = loop.time()
        try:
            await asyncio.wait_for(done.wait(), drain)
        except asyncio.TimeoutError:
            pass
        end = loop.time()
        sampling.cancel()
        for task in retry_tasks:
            task.cancel()
    finally:
        watcher.cancel()
        for link in clients.values():
            await link.close()
    for s in samples:
        s.cpu_s = _cpu_seconds(s.pid) - s.cpu_start
        peak = _peak_rss(s.pid)
        if peak:
            s.peak_rss = max(s.peak_rss, peak)
    return _report(cluster, len(replicas), tracker, len(stream), t0, last_submit, end, retries, samples)


def _report(cluster, n: int, tracker: Tracker, total: int, t0: float, last_submit: float, end: float,
            retries: int, samples: list[ProcessSample]) -> dict:
    lat = [(tracker.answered[tx] - tracker.submitted[tx]) * 1000 for tx in tracker.answered]
    answered_at = sorted(tracker.answered.values())
    window = (answered_at[-1] - t0) if answered_at else max(1e-9, end - t0)
    sent = sum(tracker.last[nd].get("sent", 0) - tracker.first[nd].get("sent", 0) for nd in tracker.last)
    sent_bytes = sum(tracker.last[nd].get("bytes", 0) - tracker.first[nd].get("bytes", 0) for nd in tracker.last)
    blocks = max(1, len(tracker.heights))
    heads: dict[int, set[str]] = {}
    for body in tracker.last.values():
        heads.setdefault(body["height"], set()).add(body["head"])
    wall = max(1e-9, end - t0)
    row = {
        "name": cluster.chain_id, "nodes": n, "f": tracker.f,
        "succ": len(tracker.answered) - len(tracker.rejected & set(tracker.answered)),
        "fail": len(tracker.rejected & set(tracker.answered)) + (total - len(tracker.answered)),
        "submitted": total, "answered": len(tracker.answered), "retries": retries,
        "send_rate_tps": round(total / max(1e-9, last_submit - t0), 2),
        "max_latency_ms": round(max(lat, default=0.0), 3), "min_latency_ms": round(min(lat, default=0.0), 3),
        "avg_latency_ms": round(sum(lat) / len(lat), 3) if lat else 0.0,
        "throughput_tps": round(len(tracker.answered) / max(1e-9, window), 2),
        "p50_ms": round(percentile(lat, 50), 3), "p95_ms": round(percentile(lat, 95), 3),
        "p99_ms": round(percentile(lat, 99), 3), "blocks": len(tracker.heights),
        "messages_per_block": round(sent / blocks, 2), "bytes_per_block": round(sent_bytes / blocks, 1),
        "bytes_per_node": round(sent_bytes / max(1, len(tracker.last)), 1),
        # The unit `bench` reports, over the load's wall-clock window (bench's is virtual time).
        "bandwidth_mbps_per_node": round(8 * sent_bytes / max(1, len(tracker.last)) / wall / 1e6, 3),
        "heights": sorted({b["height"] for b in tracker.last.values()}),
        "agreement": all(len(h) == 1 for h in heads.values()),  # no two nodes at one height with two heads
        "wall_seconds": round(wall, 3),
    }
    row["answered_txs"] = sorted(tracker.answered)  # for checking that every node holds them
    # Publishes by message type (status notices included), and how many of them were broadcasts (one
    # publish, n - 1 receivers), for `cluster compare`.
    for column, key in (("sent_by_type", "sent_by_type"), ("bytes_sent_by_type", "bytes_by_type"),
                        ("bcast_by_type", "bcast_by_type"), ("bytes_bcast_by_type", "bcast_bytes_by_type")):
        by_type: dict[str, int] = {}
        for nd, body in tracker.last.items():
            before = tracker.first[nd].get(key, {})
            for kind, count in body.get(key, {}).items():
                by_type[kind] = by_type.get(kind, 0) + count - before.get(kind, 0)
        row[column] = dict(sorted(by_type.items()))
    row["resources"] = [{"pid": s.pid, "nodes": s.ids, "cpu_s": round(s.cpu_s, 3),
                         "cpu_percent": round(100 * s.cpu_s / wall, 1), "peak_rss_mib": round(s.peak_rss / 2**20, 1)}
                        for s in samples]
    return row


def cluster_endpoint(cluster: Cluster, user: str, site: str | None) -> Endpoint:
    """How ``user`` (a client, or the operator) connects to the broker of ``site``."""
    credentials = Credentials.load(cluster.directory / CREDENTIALS)
    broker = next((b for b in cluster.brokers if b.site == site), cluster.brokers[0])
    return Endpoint(broker.host, broker.port, user, credentials.password(user), cluster.ca_file())

