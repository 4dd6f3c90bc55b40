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


def test_a_worker_process_that_stops_answering_is_never_waited_on(monkeypatch):
    """A worker stuck for good (stopped here; in life, forked while another thread held a
    lock it needs) must not hang the run: the main process never waits for an answer, it
    checks what has no answer yet itself, with the same verdicts. Once more than
    ``OUTBOX_LIMIT`` bytes of requests wait with no answer for ``STALL_LIMIT``, it is
    given up and handed nothing more."""
    import os
    import signal
    import time
    from dataclasses import replace

    from citychain.sim import verify

    monkeypatch.setattr(verify, "OUTBOX_LIMIT", 2_000)
    monkeypatch.setattr(verify, "STALL_LIMIT", 0.2)
    membership, good = _two_members()
    forged = replace(good[0], signature=bytes(64))
    worker = verify.VerifyProcess(membership)
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        for env in good + [forged]:
            worker.sent(env)
        assert [membership.authenticate(env) for env in good + [forged]] == [None] * len(good) + ["bad-signature"]
        # The pipe to the stopped worker fills (1 MiB), then the outbox grows to the limit.
        deadline = time.monotonic() + 20
        i = 0
        while not worker.gone and time.monotonic() < deadline:
            worker.sent(replace(good[i % len(good)], signature=i.to_bytes(64, "big")))
            i += 1
        assert worker.gone  # over OUTBOX_LIMIT with no answer for STALL_LIMIT
        asked = worker.asked
        worker.sent(replace(good[0], signature=b"x" * 64))
        assert worker.asked == asked  # given up: nothing more is handed over
    finally:
        worker.close()  # kills the stopped worker; close must not wait for it to finish


def test_a_worker_that_falls_behind_is_not_waited_for():
    """Answers not in yet are computed here at once: the main process never blocks on the
    worker (a round trip per envelope made small chains slower with the worker than
    without). The worker is stopped, so none of its answers can come."""
    import os
    import signal
    import time

    from citychain.sim import verify

    membership, good = _two_members()
    worker = verify.VerifyProcess(membership)
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        for env in good:
            worker.sent(env)
        start = time.monotonic()
        assert [membership.authenticate(env) for env in good] == [None] * len(good)
        assert time.monotonic() - start < 1.0 and not worker.gone and not worker.answers
    finally:
        worker.close()


def test_the_command_line_uses_a_worker_where_a_core_is_free(monkeypatch):
    from citychain.sim import verify

    monkeypatch.delenv("CITYCHAIN_VERIFY_PROCESS", raising=False)
    monkeypatch.setattr(verify, "usable_cores", lambda: 2)
    assert verify.default_process(auto=True) and not verify.default_process()
    monkeypatch.setattr(verify, "usable_cores", lambda: 1)
    assert not verify.default_process(auto=True)
    for said, expected in (("0", False), ("1", True)):
        monkeypatch.setenv("CITYCHAIN_VERIFY_PROCESS", said)
        assert verify.default_process(auto=True) is expected and verify.default_process() is expected


def test_run_gives_the_same_summary_with_and_without_the_worker():
    import json

    from click.testing import CliRunner

    from citychain.cli import main

    summaries = []
    for flag in ("--verify-worker", "--no-verify-worker"):
        result = CliRunner().invoke(main, ["run", "normal-4", "--json", flag])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        summary.pop("wall_seconds")
        summaries.append(summary)
    assert summaries[0] == summaries[1]


def test_a_run_goes_on_without_a_worker_when_no_process_can_be_had(monkeypatch):
    """fork failing (EAGAIN: a process limit) costs the run its worker, nothing else."""
    import os

    scenario = load_scenario(SCENARIOS / "taihu.yaml")
    data = scenario.model_dump()
    data["workload"]["transactions"] = 100
    scenario = type(scenario).model_validate(data)
    plain = summarize(simulate(scenario, verify_process=False), "x")

    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    run = simulate(scenario, verify_process=True)
    assert not any(type(key).__name__ == "_Key" for key, _org, _role in run.membership.members.values())
    without = summarize(run, "x")
    plain.pop("wall_seconds")
    without.pop("wall_seconds")
    assert plain == without
