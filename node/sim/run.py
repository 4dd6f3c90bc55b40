"""Build a simulated chain from a scenario and run it: a pure function of (scenario, seed)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable

from apps import REGISTRY as APP_REGISTRY
from consensus.replica import Replica, ReplicaConfig, Restored

from ..audit import ChainChecker
from ..cpu import CpuCosts
from ..execution import Executor
from ..genesis import Genesis, build_genesis
from ..ledger import Ledger
from ..membership import Membership
from ..metrics import Metrics
from ..node import Node
from ..scenario import Scenario
from ..signing import Signer
from ..state import WorldState
from ..sync import Syncer
from ..workload import Submission, submissions
from .engine import Engine
from .network import SimNetwork


def rng_for(seed: int, concern: str) -> random.Random:
    """One generator per concern, so adding randomness to one leaves the others' draws alone."""
    return random.Random(f"citychain/{seed}/{concern}")


@dataclass
class SimRun:
    scenario: Scenario
    genesis: Genesis
    membership: Membership
    metrics: Metrics
    nodes: dict[str, Node]
    engine: Engine
    submitted: int = 0
    first_submit: int = 0
    last_submit: int = 0
    wall_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def end_ns(self) -> int:
        return self.engine.now


def replica_factory(config: ReplicaConfig):
    def make(saved: Restored | None) -> Replica:
        return Replica(config) if saved is None else Replica.restore(config, saved)
    return make


def build(scenario: Scenario) -> SimRun:
    genesis = build_genesis(scenario)
    membership = genesis.membership()
    metrics = Metrics()
    engine = Engine()
    sites = {p.id: p.site for p in genesis.nodes}
    network = SimNetwork(engine, scenario.network, sites, rng_for(scenario.seed, "network"), metrics)
    apps = {name: cls(scenario.apps.get(name)) for name, cls in APP_REGISTRY.items()}
    directory = {c.id: (c.org, "client") for c in genesis.clients}
    memo: dict = {}  # (state root, block hash) -> outcome, shared by nodes holding the same state
    cpu = CpuCosts.from_microseconds(scenario.cpu.sign_us, scenario.cpu.verify_us, scenario.cpu.execute_tx_us)
    params = genesis.doc["consensus"]
    replicas = genesis.replicas
    checker = ChainChecker(membership, genesis.hash, set(replicas))
    sync_timeout = params["view_change_timeout_ns"] // 2
    nodes: dict[str, Node] = {}
    for placement in genesis.nodes:
        config = ReplicaConfig(
            chain_id=genesis.chain_id, replicas=replicas, me=placement.id,
            genesis_hash=genesis.hash, genesis_state_root=genesis.doc["state_root"],
            block_size=params["block_size"], batch_timeout=params["batch_timeout_ns"],
            checkpoint_interval=params["checkpoint_interval"], watermark_window=params["watermark_window"],
            view_change_timeout=params["view_change_timeout_ns"])
        ident = genesis.identities[placement.id]
        node = Node(placement.id, replica_factory(config), Signer(ident.id, ident.key, genesis.chain_id),
                    membership, network, Executor(apps, directory, WorldState(), memo), Ledger(genesis.hash),
                    metrics, cpu, syncer=lambda nd: Syncer(nd, checker, sync_timeout))
        nodes[placement.id] = node
        network.attach(placement.id, node.on_message, node.on_timer)
    return SimRun(scenario, genesis, membership, metrics, nodes, engine)


def simulate(scenario: Scenario, progress: Callable[[int, int], None] | None = None) -> SimRun:
    """Run the scenario's workload to completion (or until the drain time runs out)."""
    started = time.perf_counter()
    run = build(scenario)
    genesis, engine, metrics = run.genesis, run.engine, run.metrics
    signers = {c.id: Signer(c.id, genesis.identities[c.id].key, genesis.chain_id) for c in genesis.clients}
    stream = submissions(scenario.workload, genesis.clients, signers, rng_for(scenario.seed, "workload"))
    network: SimNetwork = next(iter(run.nodes.values())).transport
    drain = int(scenario.run.drain_s * 1e9)

    def submit(sub: Submission, now: int) -> None:
        gateway = run.nodes[sub.client.gateway]
        env = sub.envelope
        metrics.submitted[env.digest] = now
        metrics.sent(env.message.KIND, env.size)
        # Clients sit at their gateway's site.
        engine.at(now + network.link_latency(gateway.id, gateway.id), gateway.on_message, env)
        run.submitted += 1
        run.last_submit = now
        following = next(stream, None)
        if following is None:
            engine.until = now + drain
        else:
            engine.at(following.at, submit, following)

    first = next(stream, None)
    if first is not None:
        run.first_submit = first.at
        engine.at(first.at, submit, first)
    total = scenario.workload.transactions
    engine.run(progress=(lambda _t: progress(metrics.first_executions, total)) if progress else None)
    run.wall_seconds = time.perf_counter() - started
    return run
