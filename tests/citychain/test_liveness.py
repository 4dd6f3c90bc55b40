"""Liveness is judged on every submitted transaction, by f + 1 matching replies, and
`run` and `audit` share their exit codes (citychain/exits.py)."""

import json

import yaml
from click.testing import CliRunner

from citychain.cli import main
from citychain.exits import NOT_LIVE, OK, UNSAFE, verdict
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from citychain.summary import summarize
from node.metrics import Metrics


def write(tmp_path, base, **over) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({"base": str(base), **over}))
    return str(path)


def test_the_verdict_ranks_safety_above_liveness():
    assert verdict(True, True) == OK
    assert verdict(True, False) == NOT_LIVE == 3
    assert verdict(False, True) == verdict(False, False) == UNSAFE == 1


def test_more_than_f_silent_nodes_stall_the_chain_and_run_and_audit_exit_3(taihu_path, tmp_path):
    """Two of four nodes silent and no fault timeline: nothing commits. The old check only
    judged transactions waiting on a timeline event, and passed this run."""
    path = write(tmp_path, taihu_path, nodes=4, workload={"transactions": 5, "rate_tps": 50},
                 byzantine=[{"node": "node-1", "behaviour": "silent"}, {"node": "node-2", "behaviour": "silent"}],
                 run={"drain_s": 3.0, "liveness_bound_s": 2.0})
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", path, "--json", "--out", str(out)])
    summary = json.loads(result.output)
    assert summary["safety_violations"] == 0
    assert summary["liveness"]["uncommitted"] == 5 and not summary["liveness"]["ok"]
    assert result.exit_code == NOT_LIVE
    audited = CliRunner().invoke(main, ["audit", str(out)])
    assert "liveness: FAILED" in audited.output
    assert audited.exit_code == NOT_LIVE


def test_every_transaction_counts_not_only_those_caught_by_a_fault(taihu_path):
    """A Byzantine primary with no timeline: the slow transactions must be judged."""
    spec = load_scenario(taihu_path).with_overrides(nodes=4)
    data = spec.model_dump()
    data.update(byzantine=[{"node": "node-0", "behaviour": "silent-primary"}], faults=[],
                workload={**data["workload"], "transactions": 20, "rate_tps": 100},
                run={"drain_s": 20.0, "liveness_bound_s": 0.05})
    s = summarize(simulate(type(spec).model_validate(data)), "silent-primary")
    assert s["liveness"]["healed_at_ms"] == 0 and s["liveness"]["uncommitted"] == 0
    assert s["liveness"]["recovery_ms"] > 50 and s["liveness"]["worst_tx"]  # the view change took longer
    assert not s["liveness"]["ok"]


class _Block:
    def __init__(self, digest, txs):
        self.hash, self.requests = digest, txs


class _Tx:
    def __init__(self, digest):
        self.digest = digest


def test_a_client_needs_f_plus_1_matching_replies():
    """Section 4.1: replies from f + 1 nodes that executed *different* blocks holding the
    transaction do not answer it; f + 1 from the same block do."""
    m, tx = Metrics(), _Tx("t" * 64)
    a, b = _Block("a" * 64, (tx,)), _Block("b" * 64, (tx,))
    m.executed(a, 1)
    m.executed(b, 2)
    assert not m.answered(tx.digest, f=1)
    m.executed(a, 3)
    assert m.answered(tx.digest, f=1)


def test_a_replica_cut_off_alone_does_not_race_through_views_and_rejoins(taihu_path):
    """Found by an adversarial review: node-3, cut off for 10 s, used to move to a new view
    every time its timer fired, far ahead of the others; when node-0 then crashed, the
    others could not catch up with it for 16 s. Now it waits in its first view change
    (the NEW-VIEW timer starts with a quorum, section 4.5.2) and the others find it there."""
    spec = load_scenario(taihu_path).with_overrides(nodes=4)
    data = spec.model_dump()
    data.update(faults=[{"at_ms": 300, "partition": [["node-3"], ["node-0", "node-1", "node-2"]]},
                        {"at_ms": 10_000, "heal": True}, {"at_ms": 11_000, "crash": "node-0"}],
                workload={**data["workload"], "transactions": 1200, "rate_tps": 100})
    s = summarize(simulate(type(spec).model_validate(data)), "lone")
    assert s["safety_violations"] == 0 and s["committed_tx"] == 1200
    assert s["liveness"]["ok"] and s["liveness"]["recovery_ms"] < 5_000, s["liveness"]
