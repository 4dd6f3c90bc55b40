"""Verify-ahead (citychain/sim/verify.py): signatures checked in worker threads or a worker
process give the same run, byte for byte, as checking them on the main thread (issue 13)."""

import filecmp
from pathlib import Path

import pytest

from citychain.export import write_run
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from citychain.summary import summarize

SCENARIOS = Path(__file__).resolve().parents[2] / "citychain" / "scenarios"


def _export(scenario, out: Path, **worker) -> dict:
    run = simulate(scenario, record=True, **worker)
    summary = summarize(run, "ahead")
    summary.pop("wall_seconds", None)
    write_run(out, run, summary)
    # The membership has its plain keys back once the run is over.
    assert not any(type(key).__name__ == "_Key" for key, _org, _role in run.membership.members.values())
    return summary


def _same_tree(a: Path, b: Path) -> None:
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    for name in names:
        if name in ("summary.json", "report.html"):  # they carry the wall seconds
            continue
        assert filecmp.cmp(a / name, b / name, shallow=False), name


WORKERS = [{"verify_threads": 2}, {"verify_process": True}]


@pytest.mark.parametrize("worker", WORKERS, ids=["threads", "process"])
@pytest.mark.parametrize("path", [SCENARIOS / "taihu.yaml", SCENARIOS / "faults" / "mixed-byzantine-20.yaml"],
                         ids=["taihu", "mixed-byzantine-20"])
def test_a_worker_gives_the_same_run_byte_for_byte(path, worker, tmp_path):
    scenario = load_scenario(path)
    data = scenario.model_dump()
    data["workload"]["transactions"] = min(data["workload"]["transactions"], 300)
    scenario = type(scenario).model_validate(data)
    plain = _export(scenario, tmp_path / "plain", verify_threads=0, verify_process=False)
    ahead = _export(scenario, tmp_path / "ahead", **worker)
    assert plain == ahead
    _same_tree(tmp_path / "plain", tmp_path / "ahead")


@pytest.mark.parametrize("worker", WORKERS, ids=["threads", "process"])
def test_a_bad_signature_is_still_refused_when_checked_ahead(worker):
    scenario = load_scenario(SCENARIOS / "faults" / "mixed-byzantine-20.yaml")
    data = scenario.model_dump()
    data["workload"]["transactions"] = 200
    scenario = type(scenario).model_validate(data)
    plain = summarize(simulate(scenario, verify_threads=0, verify_process=False), "x")
    ahead = summarize(simulate(scenario, **worker), "x")
    assert plain["dropped"] == ahead["dropped"]
    assert plain["dropped"].get("bad-signature", 0) > 0


def _two_members():
    from consensus.messages import Commit
    from node.identity import derive_key
    from node.membership import Membership
    from node.signing import Signer

    keys = {m: derive_key(1, "unit", m) for m in ("node-00", "node-01")}
    membership = Membership("unit", {m: (k.public_key(), "org", "consensus") for m, k in keys.items()})
    good = [Signer(m, k, "unit").sign(Commit(0, s, "ab" * 32)) for s in (1, 2, 3) for m, k in keys.items()]
    return membership, good


def test_a_worker_process_that_dies_leaves_the_verdicts_to_the_main_process():
    """The worker killed before it answers: every envelope is still judged, here, as
    without it (a forged signature refused, the rest accepted)."""
    import os
    import signal
    from dataclasses import replace

    from citychain.sim.verify import VerifyProcess

    membership, good = _two_members()
    forged = replace(good[0], signature=bytes(64))
    worker = VerifyProcess(membership)
    os.kill(worker.pid, signal.SIGKILL)
    try:
        for env in good + [forged]:
            worker.sent(env)
        verdicts = [membership.authenticate(env) for env in good + [forged]]
    finally:
        worker.close()
    assert verdicts == [None] * len(good) + ["bad-signature"]
