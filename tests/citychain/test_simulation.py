"""Whole simulated chains: agreement at every size, and runs as pure functions of the seed."""

import filecmp

import pytest

from citychain.export import write_run
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from citychain.summary import audit_run, summarize


@pytest.fixture(scope="module")
def taihu(taihu_path):
    return load_scenario(taihu_path)


def small(scenario, **over):
    data = scenario.model_dump()
    data["workload"]["transactions"] = over.pop("transactions", 300)
    for key, value in over.items():
        data[key] = value
    return type(scenario).model_validate(data)


@pytest.mark.parametrize("n", [4, 7, 20, 40, 60])
def test_every_size_agrees_and_commits_everything(taihu, n):
    scenario = small(taihu, nodes=n, transactions=400 if n >= 40 else 300)
    run = simulate(scenario)
    summary = summarize(run, "taihu")
    assert summary["agreement"] is True
    assert summary["safety_violations"] == 0
    assert summary["committed_tx"] == summary["submitted_tx"] == scenario.workload.transactions
    assert summary["nodes"] == n and summary["f"] == (n - 1) // 3
    # Every node executed every block, and every block has a certificate of a quorum.
    assert {node.ledger.height for node in run.nodes.values()} == {summary["blocks"]}
    rejected = {k: v for k, v in summary["dropped"].items() if k != "stale"}
    assert rejected == {}


def test_the_full_taihu_scenario(taihu):
    summary = summarize(simulate(taihu), "taihu")
    assert summary["agreement"] and summary["committed_tx"] == 1000
    assert summary["latency_ms"]["p50"] > 0 and summary["tps"] > 0
    by_type = summary["messages"]["by_type"]
    n = 24
    blocks = summary["blocks"]
    # The PBFT normal case: n-1 pre-prepare copies, (n-1)^2 prepare copies and n(n-1) commits per block.
    assert by_type["pre-prepare"] == blocks * (n - 1)
    assert by_type["prepare"] == blocks * (n - 1) * (n - 1)
    assert by_type["commit"] == blocks * n * (n - 1)


def test_same_seed_gives_byte_identical_ledgers(taihu, tmp_path):
    scenario = small(taihu, nodes=7)
    runs = []
    for name in ("a", "b"):
        run = simulate(scenario)
        summary = summarize(run, "taihu")
        write_run(tmp_path / name, run, summary)
        runs.append(summary)
    assert runs[0]["head"] == runs[1]["head"]
    files = sorted(p.name for p in (tmp_path / "a" / "ledgers").iterdir())
    assert len(files) == 7
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a" / "ledgers", tmp_path / "b" / "ledgers", files,
                                               shallow=False)
    assert mismatch == [] and errors == [] and len(match) == 7
    assert filecmp.cmp(tmp_path / "a" / "genesis" / "genesis.json", tmp_path / "b" / "genesis" / "genesis.json",
                       shallow=False)


def test_a_different_seed_gives_a_different_chain(taihu):
    a = summarize(simulate(small(taihu, nodes=7, seed=1)), "t")
    b = summarize(simulate(small(taihu, nodes=7, seed=2)), "t")
    assert a["head"]["hash"] != b["head"]["hash"]


def test_message_loss_is_tolerated_while_a_quorum_hears(taihu):
    data = small(taihu, nodes=7).model_dump()
    data["network"]["loss"] = 0.01
    summary = summarize(simulate(type(taihu).model_validate(data)), "lossy")
    assert summary["messages_lost"] > 0
    assert summary["safety_violations"] == 0


def test_bandwidth_shapes_latency(taihu):
    fast = small(taihu, nodes=20, transactions=200).model_dump()
    slow = small(taihu, nodes=20, transactions=200).model_dump()
    slow["network"]["bandwidth_mbps"] = 50
    lat_fast = summarize(simulate(type(taihu).model_validate(fast)), "f")["latency_ms"]["p50"]
    lat_slow = summarize(simulate(type(taihu).model_validate(slow)), "s")["latency_ms"]["p50"]
    assert lat_slow > 2 * lat_fast


def test_audit_of_a_run_checks_certificates(taihu):
    run = simulate(small(taihu, nodes=4))
    report = audit_run(run)
    assert report.safe and report.agreement


def test_a_certified_block_that_does_not_extend_the_chain_is_refused_not_applied(taihu):
    """Only more than f faulty replicas can certify such a block; the node must neither
    crash nor rewrite its ledger."""
    from consensus.block import Block, BlockHeader, tx_root
    from consensus.effects import Execute

    run = simulate(small(taihu, nodes=4, transactions=20))
    node = run.nodes["node-01"]
    height, root = node.ledger.height, node.executor.state.root()
    stray = Block.create(BlockHeader(run.genesis.chain_id, height + 1, "ee" * 32, tx_root(()), root, 0,
                                     "node-00", 10**15), ())
    node._perform([Execute(stray, ())], __import__("collections").deque(), run.end_ns, run.end_ns)
    assert node.ledger.height == height and node.executor.state.root() == root
    assert run.metrics.drops["node-01"]["certified-block-does-not-extend-chain"] == 1
