"""Build a simulated chain from a scenario and run it: a pure function of (scenario, seed)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from weakref import WeakValueDictionary
from dataclasses import dataclass, field, replace
from typing import Callable

from consensus.executed import ExecutedIndex
from consensus.quorum import quorum
from node.assembly import chain_apps, client_directory, replica_config, replica_factory, sync_timings
from node.byzantine import Context, syncer_for
from node.checker import ChainChecker
from node.execution import Executor, OutcomeMemo
from node.history import ExecutedArchive, HistoryStore
from node.ledger import Ledger
from node.membership import Membership
from node.metrics import Metrics
from node.node import Node
from node.observer import ObserverConfig, ObserverReplica
from node.signing import Signer
from node.state import WorldState
from node.sync import Syncer

from ..genesis import Genesis, build_genesis
from ..scenario import Scenario
from .collector import quiet_collector
from .cpu import CpuCosts
from .engine import Engine
from .faults import Action, FaultPlan, plan_faults
from .network import SimNetwork
from .trace import FORMAT as TRACE_FORMAT
from .trace import Recorder, RecordingNetwork, Trace
from .verify import VerifyAhead, VerifyProcess, default_process, default_threads
from .workload import Submission, submissions


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
    network: SimNetwork
    plan: FaultPlan
    submitted: int = 0
    first_submit: int = 0
    last_submit: int = 0
    wall_seconds: float = 0.0
    apps: dict = field(default_factory=dict)  # app name -> instance (with the scenario's settings)
    timeline: list[tuple[int, str]] = field(default_factory=list)  # (ns, what happened)
    faulted: set[str] = field(default_factory=set)  # nodes crashed or paused at some point
    recorder: Recorder | None = None  # with ``record=True``: every message, drop and phase change

    def close(self) -> None:
        """Remove the run's history store now (else when the run is collected, or at exit);
        its ledgers and records cannot be read after."""
        self.metrics.history.close()

    def trace(self, name: str = "") -> Trace:
        """The recorded run (``simulate(..., record=True)``) with its header."""
        if self.recorder is None:
            raise ValueError("this run was not recorded: simulate(..., record=True)")
        return self.recorder.trace(trace_header(self, name))

    @property
    def end_ns(self) -> int:
        return self.engine.now

    @property
    def honest(self) -> list[str]:
        return [n for n in self.nodes if n not in self.plan.byzantine]

    @property
    def f(self) -> int:
        return (len(self.genesis.replicas) - 1) // 3

    def current_primary(self) -> str:
        """The primary of the highest view any honest, running node has installed."""
        views = [self.nodes[n].replica.installed_view for n in self.honest if not self.nodes[n].down]
        replicas = self.genesis.replicas
        return replicas[max(views, default=0) % len(replicas)]


def trace_header(run: SimRun, name: str) -> dict:
    """The first line of a trace: the chain, its quorum arithmetic and its parameters."""
    replicas = run.genesis.replicas
    params = run.genesis.doc["consensus"]
    n = len(replicas)
    return {"format": TRACE_FORMAT, "scenario": name, "chain_id": run.genesis.chain_id, "seed": run.scenario.seed,
            "nodes": list(replicas), "n": n, "f": run.f, "quorum": quorum(n),
            "checkpoint_interval": params["checkpoint_interval"], "watermark_window": params["watermark_window"],
            "block_size": params["block_size"], "byzantine": {k: v.behaviour for k, v in run.plan.byzantine.items()},
            "end_ns": run.end_ns}


VERDICTS = 1 << 15  # signature verdicts a run remembers (node/membership.py ``bound_verdicts``)
HISTORY_WINDOW = 32  # ledger entries each node keeps in memory, at least; the rest in its run's HistoryStore
EXECUTED_RECENT = 256  # blocks whose request ids the replicas' shared index keeps in memory, at least; the rest in the store
MEMO = 256  # block outcomes remembered for nodes behind (node/execution.py), at least


def build(scenario: Scenario, record: bool = False, history_window: int | None = None,
          keep_checked: bool = False, scratch: Path | None = None) -> SimRun:
    """The chain of ``scenario``, ready to run. ``history_window``: see ``HISTORY_WINDOW``;
    ``keep_checked``: remember every envelope checked, for ``crypto_floor``; ``scratch``:
    the directory for the run's history store (node/history.py; default ``$TMPDIR``)."""
    genesis = build_genesis(scenario)
    membership = genesis.membership()
    membership.bound_verdicts(VERDICTS, keep_checked)
    history = HistoryStore(genesis.chain_id, scratch)
    metrics = Metrics(history)
    history_window = HISTORY_WINDOW if history_window is None else history_window
    engine = Engine()
    sites = {p.id: p.site for p in genesis.nodes + genesis.observers}
    recorder = Recorder(genesis.replicas, engine) if record else None
    network_class = SimNetwork if recorder is None else RecordingNetwork
    network = network_class(engine, scenario.network, sites, rng_for(scenario.seed, "network"), metrics)
    if recorder is not None:
        network.recorder = recorder
        recorder.counting(metrics)
    plan = plan_faults(scenario, genesis)
    apps = chain_apps(genesis.doc)
    directory = client_directory(genesis.doc)
    memo = OutcomeMemo(MEMO)  # (state root, block hash) -> outcome, shared by nodes holding the same state
    states = WeakValueDictionary()  # (state root, block hash) -> the state after it, shared likewise
    cpu = CpuCosts.from_spec(scenario.cpu)
    replicas = genesis.replicas
    checker = ChainChecker(membership, genesis.hash, set(replicas))
    sync_timeout, sync_interval = sync_timings(genesis.doc)
    colluders = frozenset(n for n, b in plan.byzantine.items() if b.behaviour == "fork")
    honest = [n for n in replicas if n not in colluders]
    groups = (tuple(honest[0::2]), tuple(honest[1::2]))
    nodes: dict[str, Node] = {}
    # executed request ids, stored once for every replica, the older ones in the store (consensus/executed.py)
    executed = ExecutedIndex(ExecutedArchive(history), EXECUTED_RECENT)
    for placement in genesis.nodes:
        config = replace(replica_config(genesis.doc, placement.id, genesis.hash, membership),
                         executed_index=executed)
        ident = genesis.identities[placement.id]
        signer = Signer(ident.id, ident.key, genesis.chain_id)
        bad = plan.byzantine.get(placement.id)
        behaviour = bad.behaviour if bad else None
        ctx = Context(placement.id, replicas, signer, rng_for(scenario.seed, f"byzantine/{placement.id}"),
                      colluders, bad.delay, groups, bad.targets, bad.kinds) if bad else None
        syncer_class = syncer_for(behaviour)
        make = replica_factory(config, behaviour, ctx)
        if recorder is not None:
            make = (lambda saved, m=make, nid=placement.id: recorder.watch(nid, m(saved)))
        node = Node(placement.id, make, signer, membership, network,
                    Executor(apps, directory, WorldState(), memo, states), Ledger(genesis.hash, history, history_window), metrics, cpu,
                    syncer=lambda nd, cls=syncer_class: cls(nd, checker, sync_timeout, sync_interval))
        nodes[placement.id] = node
        network.attach(placement.id, node.on_message, node.on_timer)
    for placement in genesis.observers:
        ident = genesis.identities[placement.id]
        watcher = ObserverConfig(genesis.chain_id, replicas, placement.id)
        node = Node(placement.id, lambda _saved, c=watcher: ObserverReplica(c),
                    Signer(ident.id, ident.key, genesis.chain_id), membership, network,
                    Executor(apps, directory, WorldState(), memo, states), Ledger(genesis.hash, history, history_window), metrics, cpu,
                    syncer=lambda nd: Syncer(nd, checker, sync_timeout, sync_interval // 2))
        nodes[placement.id] = node
        network.attach(placement.id, node.on_message, node.on_timer, votes=False)
    for node in nodes.values():
        node.syncer.start(0)
    return SimRun(scenario, genesis, membership, metrics, nodes, engine, network, plan, apps=apps, recorder=recorder)


def _apply(run: SimRun, action: Action, now: int) -> None:
    target = run.current_primary() if action.target == "primary" else action.target
    if action.kind in ("crash", "pause"):
        run.faulted.add(target)
    if action.kind == "crash":
        run.nodes[target].crash(now)
    elif action.kind == "recover":
        run.nodes[target].recover(now)
    elif action.kind == "pause":
        run.nodes[target].pause(now)
    elif action.kind == "resume":
        run.nodes[target].resume(now)
    elif action.kind == "partition":
        run.network.partition([set(g) for g in action.groups])
    elif action.kind == "cut":
        run.network.cut(*action.groups)
    elif action.kind == "heal":
        run.network.heal()
    elif action.kind == "link":
        link = action.link
        run.network.set_link(link.between[0], link.between[1], link.latency_ms, link.loss)
    what = action.describe() if action.target != "primary" else f"{action.kind} {target} (the primary)"
    if run.recorder is not None:
        run.recorder.fault(now, action, target)
    run.timeline.append((now, what))


def _worker(membership) -> VerifyProcess | None:
    """A verify worker process, or none if the system will not give one (it only saves
    time: the run is the same without it)."""
    try:
        return VerifyProcess(membership)
    except OSError:
        return None


def simulate(scenario: Scenario, progress: Callable[[int, int], None] | None = None,
             record: bool = False, verify_threads: int | None = None, history_window: int | None = None,
             keep_checked: bool = False, verify_process: bool | None = None, scratch: Path | None = None) -> SimRun:
    """Run the scenario's workload to completion (or until the drain time runs out).
    ``record``: keep a trace of the run (``run.trace()``; citychain/sim/trace.py).
    ``verify_threads``: worker threads verifying signatures ahead (citychain/sim/verify.py;
    default ``CITYCHAIN_VERIFY_THREADS`` or 0, none); ``verify_process``: one worker
    process instead (default ``CITYCHAIN_VERIFY_PROCESS=1``); the run is the same either
    way, and whatever ``history_window`` (``build``). ``scratch``: see ``build``."""
    started = time.perf_counter()
    options = {"history_window": history_window} if history_window is not None else {}
    if keep_checked:
        options["keep_checked"] = True
    if scratch is not None:
        options["scratch"] = scratch
    run = build(scenario, record=True, **options) if record else build(scenario, **options)
    threads = default_threads() if verify_threads is None else verify_threads
    process = default_process() if verify_process is None else verify_process
    genesis, engine, metrics, network = run.genesis, run.engine, run.metrics, run.network
    signers = {c.id: Signer(c.id, genesis.identities[c.id].key, genesis.chain_id) for c in genesis.clients}
    org_keys = {o["id"]: o["x25519"] for o in genesis.doc["organisations"]}
    stream = submissions(scenario.workload, genesis.clients, signers, rng_for(scenario.seed, "workload"),
                         run.apps, org_keys, epoch=run.membership.epoch_ns)
    drain = int(scenario.run.drain_s * 1e9)
    retry = int(scenario.workload.retry_ms * 1e6)
    f = run.f
    node_ids = list(run.nodes)

    for action in run.plan.actions:
        engine.at(action.at, lambda a, now: _apply(run, a, now), action)

    def answered(digest: str) -> bool:
        return metrics.answered(digest, f)

    def check(item: tuple[Submission, int], now: int) -> None:
        # PBFT section 4.1: a client without f + 1 replies sends its request to every replica.
        sub, tries = item
        if answered(sub.envelope.digest):
            return
        metrics.retries += 1
        for node_id in node_ids:
            network.client_send(sub.client.gateway, node_id, sub.envelope, now)
        if tries + 1 < scenario.workload.max_retries:
            engine.at(now + (retry << (tries + 1)), check, (sub, tries + 1))

    def submit(sub: Submission, now: int) -> None:
        env = sub.envelope
        metrics.submitted[env.digest] = now
        network.client_send(sub.client.gateway, sub.client.gateway, env, now)
        if scenario.workload.max_retries:
            engine.at(now + retry, check, (sub, 0))
        run.submitted += 1
        run.last_submit = now
        following = next(stream, None)
        if following is None:
            engine.until = max(now, run.plan.last_heal) + drain
        else:
            engine.at(following.at, submit, following)

    honest = run.honest

    def settled() -> bool:
        """Workload and faults over, and every honest running node holds every transaction
        (what Byzantine nodes executed does not count: they may be ahead alone)."""
        if engine.now < run.plan.last_heal or metrics.first_executions < run.submitted:
            return False
        ledgers = [run.nodes[n].ledger for n in honest if not run.nodes[n].down]
        return len({ledger.height for ledger in ledgers}) <= 1 and all(
            ledger.transactions >= run.submitted for ledger in ledgers)

    engine.settled = settled
    first = next(stream, None)
    if first is not None:
        run.first_submit = first.at
        engine.at(first.at, submit, first)
    total = scenario.workload.transactions
    # The worker is made last, right before the try that ends it: an exception in the
    # set-up above (a KeyboardInterrupt while the first request is signed) must not leave
    # it running, its pipes open and the keys wrapped (review revwk). Nothing is sent
    # before the event loop runs.
    ahead = _worker(run.membership) if process else VerifyAhead(run.membership, threads) if threads > 0 else None
    try:
        if ahead is not None:
            run.network.ahead = ahead.sent
        with quiet_collector():
            engine.run(progress=(lambda _t: progress(metrics.first_executions, total)) if progress else None)
    finally:
        if ahead is not None:
            run.network.ahead = None
            ahead.close()
    run.wall_seconds = time.perf_counter() - started
    return run
