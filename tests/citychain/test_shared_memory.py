"""rev3: adversarial tests of the simulator's shared memory (issue 13, branch perf):
the executed-request index shared by every replica, the copy-on-write world states
shared through a weak map, and the verify-ahead worker.

Each test runs shipped fault scenarios (forks, crashes with state transfer, Byzantine
mixes) and checks that sharing never leaks one node's view into another's."""

from __future__ import annotations

import filecmp
import gc
from pathlib import Path

import pytest

import citychain.sim.run as simrun
from citychain.export import write_run
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from citychain.summary import summarize
from node.execution import Executor
from node.node import Node
from node.state import WorldState

SCENARIOS = Path(__file__).resolve().parents[2] / "citychain" / "scenarios"


def _scenario(name: str, transactions: int | None = None, **overrides):
    scenario = load_scenario(SCENARIOS / name)
    data = scenario.model_dump()
    if transactions is not None:
        data["workload"]["transactions"] = min(data["workload"]["transactions"], transactions)
    data.update(overrides)
    return type(scenario).model_validate(data)


def _all_ids(run) -> set[str]:
    out = set()
    for node in run.nodes.values():
        for entry in node.ledger.entries:
            out |= entry.block.ids
    return out


def _check_done_is_own_ledger(run, executing=None) -> None:
    """Every replica answers 'executed' exactly for the requests in its own ledger: the
    shared index never lends it another node's blocks (a fork, a lagging node).
    ``executing``: a node whose last block is in its ledger but not yet told its replica."""
    every = _all_ids(run)
    for node in run.nodes.values():
        replica = getattr(node.replica, "inner", node.replica)
        if not hasattr(replica, "done"):
            continue  # an observer
        own = set()
        for entry in node.ledger.entries:
            own |= entry.block.ids
        if node is executing:
            own -= node.ledger.entries[-1].block.ids
        claimed = {rid for rid in every if rid in replica.done}
        assert claimed == own, (node.id, sorted(claimed ^ own)[:5])


def _fresh_replay(node) -> WorldState:
    ex = Executor(node.executor.apps, node.executor.directory, WorldState())
    for entry in node.ledger.entries:
        ex.execute(entry.block)
    return ex.state


def _check_states_untouched(run) -> None:
    """Every node's state (possibly shared) is what replaying its own ledger from scratch,
    without the memo, gives: nobody's execution polluted it; and every state still held
    in the shared map has the root its content hashes to (no in-place write since)."""
    for node in run.nodes.values():
        fresh = _fresh_replay(node)
        mine = node.executor.state
        assert mine.root() == fresh.root(), node.id
        assert dict(mine.items()) == dict(fresh.items()), node.id
        if node.ledger.entries:
            assert node.ledger.entries[-1].block.header.height == node.ledger.height
    for executor in {id(n.executor.states): n.executor.states for n in run.nodes.values()}.values():
        if executor is None:
            continue
        for (_parent, _block), state in list(executor.items()):
            rebuilt = WorldState()
            rebuilt.apply(tuple((k, s) for b in state._buckets for k, s in b.items()))
            assert rebuilt.root() == state.root()


FAULTS = ["faults/fork-f-plus-1.yaml", "faults/crash-catch-up.yaml", "faults/mixed-byzantine-20.yaml",
          "faults/partition-heal.yaml", "faults/equivocating-primary.yaml", "faults/primary-crash.yaml"]


@pytest.mark.parametrize("name", FAULTS, ids=[Path(n).stem for n in FAULTS])
def test_each_replica_sees_only_its_own_executed_requests_and_states_stay_pure(name):
    run = simulate(_scenario(name, 400))
    _check_done_is_own_ledger(run)
    _check_states_untouched(run)


def test_the_index_never_leaks_mid_run_to_a_lagging_or_restarted_node(monkeypatch):
    """After every block any node executes (by consensus or by state transfer), every
    replica's 'executed' answer equals its own ledger, at that moment: a node that is
    down, lagging or catching up is never told a request is executed because a peer
    executed it."""
    checks = {"n": 0}
    runs = []
    real_execute = Node._execute

    def execute(self, block, certificate, t):
        out = real_execute(self, block, certificate, t)
        checks["n"] += 1
        if runs and checks["n"] % 7 == 0:
            _check_done_is_own_ledger(runs[0], executing=self)
        return out

    real_build = simrun.build

    def build(*a, **k):
        run = real_build(*a, **k)
        runs.append(run)
        return run

    monkeypatch.setattr(Node, "_execute", execute)
    monkeypatch.setattr(simrun, "build", build)
    run = simulate(_scenario("faults/crash-catch-up.yaml", 600))
    assert checks["n"] > 0
    assert any(n.syncer is not None and n.syncer.fetched_blocks for n in run.nodes.values())
    _check_done_is_own_ledger(run)


@pytest.mark.parametrize("name", ["faults/fork-f-plus-1.yaml", "faults/crash-catch-up.yaml",
                                  "faults/mixed-byzantine-20.yaml"], ids=["fork", "crash-catch-up", "mixed"])
def test_executed_ids_handed_to_the_store_answer_as_before(name, tmp_path, monkeypatch):
    """With the shared index keeping a single recent block in memory (the rest in the
    run's store, node/history.py ``ExecutedArchive``), every replica still answers
    'executed' exactly for its own ledger, mid-run and at the end (forks, a restart that
    re-executes its ledger, state transfer), and the export is the same byte for byte."""
    scenario = _scenario(name, 300)
    _export(scenario, tmp_path / "memory")
    monkeypatch.setattr(simrun, "EXECUTED_RECENT", 1)
    runs, real_build, real_execute = [], simrun.build, Node._execute

    def build(*a, **k):
        runs.append(real_build(*a, **k))
        return runs[-1]

    def execute(self, block, certificate, t):
        out = real_execute(self, block, certificate, t)
        if len(self.ledger.entries) % 5 == 0:
            _check_done_is_own_ledger(runs[-1], executing=self)
        return out

    monkeypatch.setattr(simrun, "build", build)
    monkeypatch.setattr(Node, "_execute", execute)
    _export(scenario, tmp_path / "store")
    assert runs[-1].nodes["node-00"].replica is not None
    _check_done_is_own_ledger(runs[-1])
    _same_tree(tmp_path / "memory", tmp_path / "store")


class _Forgetful(dict):
    """A 'weak' map whose every entry has just been collected."""

    def __setitem__(self, key, value):
        pass

    def get(self, key, default=None):
        return default


class _Keeps(dict):
    """A map that never lets a state go."""


def _export(scenario, out: Path) -> None:
    run = simulate(scenario, record=True, verify_threads=0)
    summary = summarize(run, "rev3")
    summary.pop("wall_seconds", None)
    write_run(out, run, summary)


def _same_tree(a: Path, b: Path) -> None:
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    for name in names:
        if name in ("summary.json", "report.html"):
            continue
        assert filecmp.cmp(a / name, b / name, shallow=False), name


@pytest.mark.parametrize("name", ["faults/fork-f-plus-1.yaml", "faults/crash-catch-up.yaml"],
                         ids=["fork", "crash-catch-up"])
def test_garbage_collection_of_shared_states_never_changes_a_run(name, tmp_path, monkeypatch):
    scenario = _scenario(name, 300)
    _export(scenario, tmp_path / "weak")
    monkeypatch.setattr(simrun, "WeakValueDictionary", _Forgetful)
    _export(scenario, tmp_path / "forgetful")
    monkeypatch.setattr(simrun, "WeakValueDictionary", _Keeps)
    gc.collect()
    _export(scenario, tmp_path / "keeps")
    _same_tree(tmp_path / "weak", tmp_path / "forgetful")
    _same_tree(tmp_path / "weak", tmp_path / "keeps")


@pytest.mark.parametrize("name", ["fork-4", "catch-up-4", "equivocation-4"])
def test_exports_are_identical_across_hash_seeds_and_verify_threads(name, tmp_path):
    """The CLI's export, byte for byte, under two PYTHONHASHSEEDs and with the verify-ahead
    worker on: no set or dict order, thread timing or collection changes a run."""
    import os
    import subprocess
    import sys

    cli = Path(sys.executable).parent / "citychain"
    outs = []
    for seed, threads in (("0", "0"), ("4242", "0"), ("99", "1")):
        out = tmp_path / f"{seed}-{threads}"
        env = dict(os.environ, PYTHONHASHSEED=seed, CITYCHAIN_VERIFY_THREADS=threads)
        subprocess.run([str(cli), "run", name, "--out", str(out), "--no-progress"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        assert (out / "summary.json").exists()
        outs.append(out)
    for other in outs[1:]:
        _same_tree(outs[0], other)
