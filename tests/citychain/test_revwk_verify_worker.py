"""Review revwk: the verify worker process on by default for ``citychain run`` (commit
7fbaad6; citychain/sim/verify.py ``VerifyProcess``). Each test drives one scripted case:
a claim of the change (same run, never hangs or hurts a run, signals, no leaks) and the
interleaving or input that would break it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from citychain.summary import summarize

from .test_scratch_store import _dead as _gone
from .test_verify_ahead import _export, _same_tree

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "citychain" / "scenarios"
SHIPPED = sorted(p for p in SCENARIOS.rglob("*.yaml"))


def _capped(path: Path, transactions: int):
    scenario = load_scenario(path)
    data = scenario.model_dump()
    data["workload"]["transactions"] = min(data["workload"]["transactions"], transactions)
    return type(scenario).model_validate(data)


def _children() -> list[int]:
    me = os.getpid()
    try:
        return [int(x) for x in Path(f"/proc/{me}/task/{me}/children").read_text().split()]
    except OSError:
        return []


def _fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


def _pipes() -> set[int]:
    found = set()
    for fd in _fds():
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                found.add(fd)
        except OSError:
            pass
    return found


# ---- claim 1: the same run, byte for byte ---------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(SCENARIOS)) for p in SHIPPED])
def test_revwk_every_shipped_scenario_is_the_same_with_the_worker(path, tmp_path):
    scenario = _capped(path, 120)
    plain = _export(scenario, tmp_path / "plain", verify_threads=0, verify_process=False)
    ahead = _export(scenario, tmp_path / "ahead", verify_process=True)
    assert plain == ahead
    _same_tree(tmp_path / "plain", tmp_path / "ahead")


HOSTILE = textwrap.dedent("""\
    base: {taihu}
    nodes: 16
    observers: 1
    workload:
      transactions: 250
    byzantine:
      - {{node: node-1, behaviour: forge-signatures}}
      - {{node: node-2, behaviour: forged-view-change}}
      - {{node: node-3, behaviour: two-new-views}}
      - {{node: node-4, behaviour: replay}}
      - {{node: node-5, behaviour: stale-blocks}}
    revocations:
      - {{member: client-0, at_ms: 300}}
      - {{member: node-7, at_ms: 900}}
    faults:
      - {{at_ms: 200, crash: primary}}
      - {{at_ms: 400, crash: node-9}}
      - {{at_ms: 2500, recover: node-9}}
    """)


@pytest.mark.parametrize("limit", [None, 6], ids=["pending-20000", "pending-6"])
def test_revwk_forgers_revocations_view_changes_and_pending_eviction_give_the_same_run(limit, tmp_path,
                                                                                       monkeypatch):
    """Forged signatures and view changes, revoked certificates (a client's and a
    node's) while the keys are wrapped, a crash of the primary and a crash then recovery
    (state transfer), with the worker; and again with ``PENDING_LIMIT`` so small that
    answers under way are forgotten all the time."""
    from citychain.sim import verify

    spec = tmp_path / "hostile.yaml"
    spec.write_text(HOSTILE.format(taihu=SCENARIOS / "taihu.yaml"))
    scenario = load_scenario(spec)
    plain = _export(scenario, tmp_path / "plain", verify_threads=0, verify_process=False)
    if limit is not None:
        monkeypatch.setattr(verify, "PENDING_LIMIT", limit)
    used = []
    real_close = verify.VerifyProcess.close

    def spy(self):
        used.append((self.asked, self.gone, self.base))
        real_close(self)

    monkeypatch.setattr(verify.VerifyProcess, "close", spy)
    ahead = _export(scenario, tmp_path / "ahead", verify_process=True)
    asked, gone, _base = used[0]
    assert asked > 500 and not gone  # the worker did the checking, to the end
    assert plain == ahead
    assert plain["dropped"].get("bad-signature", 0) > 0
    _same_tree(tmp_path / "plain", tmp_path / "ahead")


def _members(roles=("consensus", "consensus", "client")):
    from node.identity import derive_key
    from node.membership import Membership

    ids = [f"m-{i}" for i in range(len(roles))]
    keys = {m: derive_key(7, "revwk", m) for m in ids}
    membership = Membership("revwk", {m: (keys[m].public_key(), "org", r) for m, r in zip(ids, roles)})
    return membership, keys


@pytest.mark.parametrize("first", ["genuine", "reused"])
def test_revwk_a_signature_reused_on_other_bytes_is_refused_in_either_order(first):
    """``pending`` is keyed by signature: an envelope carrying another's signature over
    different bytes (same signer) finds the other's answer under way. It must be refused,
    and the genuine one accepted, whichever is checked first; a re-made copy of the
    genuine envelope (a replay, a new object) is accepted too."""
    from consensus.messages import Commit
    from node.signing import Signer

    from citychain.sim.verify import VerifyProcess

    membership, keys = _members()
    signer = Signer("m-0", keys["m-0"], "revwk")
    genuine = signer.sign(Commit(0, 1, "ab" * 32))
    other = signer.sign(Commit(0, 2, "cd" * 32))
    reused = replace(other, signature=genuine.signature)
    copy = replace(genuine)
    worker = VerifyProcess(membership)
    try:
        for env in (genuine, reused, copy):
            worker.sent(env)
        order = [genuine, reused, copy] if first == "genuine" else [reused, genuine, copy]
        verdicts = {id(env): membership.authenticate(env) for env in order}
    finally:
        worker.close()
    assert verdicts[id(reused)] == "bad-signature"
    assert verdicts[id(genuine)] is None and verdicts[id(copy)] is None


class Hung(Exception):
    """Not a TimeoutError: that is an OSError, which ``_flush`` takes for a dead worker."""


def _alarm(seconds: int):
    def ring(_s, _f):
        raise Hung(f"not done within {seconds} s: the run would hang")

    signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)


def test_revwk_envelopes_larger_than_the_pipes_do_not_hang_and_keep_their_verdicts():
    """Requests of 3 MiB each (a NEW-VIEW with many VIEW-CHANGEs is this large), more
    than either pipe holds, written while the worker is still answering earlier ones;
    and one forged copy among them."""
    from consensus.messages import Request
    from node.signing import Signer

    from citychain.sim.verify import VerifyProcess

    membership, keys = _members(("consensus", "client"))
    signer = Signer("m-1", keys["m-1"], "revwk")
    big = [signer.sign(Request(nonce=i, app="records", op="put", args={"blob": "x" * (3 << 20)}, ts=i))
           for i in range(1, 9)]
    forged = replace(big[3], signature=bytes(64))
    worker = VerifyProcess(membership)
    _alarm(60)
    try:
        for env in big + [forged]:
            worker.sent(env)
        verdicts = [membership.authenticate(env) for env in big + [forged]]
        assert not worker.gone
    finally:
        signal.alarm(0)
        worker.close()
    assert verdicts == [None] * len(big) + ["bad-signature"]


def test_revwk_many_envelopes_never_read_do_not_fill_both_pipes():
    """40,000 envelopes handed to the worker and none asked about for a long time (sent
    to crashed nodes, lost): the requests pipe fills while the worker's answers pile up
    in the other. The main process must never block writing while the worker blocks
    answering."""
    from consensus.messages import Commit
    from node.signing import Signer

    from citychain.sim.verify import VerifyProcess

    membership, keys = _members()
    signer = Signer("m-0", keys["m-0"], "revwk")
    envs = [signer.sign(Commit(0, s, "ab" * 32)) for s in range(1, 41)]
    worker = VerifyProcess(membership)
    _alarm(120)
    try:
        for _round in range(1000):
            for env in envs:
                worker.sent(env)
            worker.pending.clear()  # as if forgotten: each is asked again next round
        for env in envs:
            worker.sent(env)
        verdicts = [membership.authenticate(env) for env in envs]
        assert not worker.gone
    finally:
        signal.alarm(0)
        worker.close()
    assert verdicts == [None] * len(envs)


# ---- claim 2: the worker never hurts a run --------------------------------------------


def test_revwk_a_run_in_a_process_with_many_files_open_is_not_hurt_by_its_worker():
    """``verdict`` waited with ``select.select``, which refuses a descriptor of 1024 or
    more (FD_SETSIZE): in a process holding a thousand files (a long-lived library
    caller; the limit here is far higher than 1024) the worker's answer pipe gets such a
    number, and the first wait raised ValueError out of ``Membership.authenticate``: the
    run crashed where, without the worker, it completes."""
    limit = 1100
    soft, _hard = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)
    if soft < limit + 64:
        pytest.skip("the open-files limit is too low to hold 1,100 files")
    scenario = _capped(SCENARIOS / "teaching" / "normal-4.yaml", 60)
    plain = summarize(simulate(scenario, verify_process=False), "x")
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(limit)]
    try:
        ahead = summarize(simulate(scenario, verify_process=True), "x")
    finally:
        for fd in held:
            os.close(fd)
    plain.pop("wall_seconds")
    ahead.pop("wall_seconds")
    assert plain == ahead


_SIGCHLD_IGNORED = textwrap.dedent("""\
    import signal, sys
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    from citychain.scenario import load_scenario
    from citychain.sim.run import simulate
    run = simulate(load_scenario(sys.argv[1]), verify_process=True)
    assert not any(type(k).__name__ == "_Key" for k, _o, _r in run.membership.members.values())
    print(run.metrics.first_executions)
    """)


def test_revwk_a_run_whose_parent_ignores_sigchld_ends_normally(tmp_path):
    """A process started with SIGCHLD ignored (inherited across exec from a daemon, a
    supervisor, ``trap '' CHLD``) has its children reaped by the kernel: ``close`` then
    met ECHILD in ``os.waitpid`` and raised ChildProcessError out of ``simulate`` after a
    complete run; ``citychain run`` exited 2 with "writing --out None: [Errno 10] No
    child processes". Without the worker (before 7fbaad6, the default) the run succeeds."""
    script = tmp_path / "ignored.py"
    script.write_text(_SIGCHLD_IGNORED)
    path = SCENARIOS / "teaching" / "normal-4.yaml"
    done = subprocess.run([sys.executable, str(script), str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    cli = subprocess.run([sys.executable, "-m", "citychain.cli", "run", "normal-4", "--json", "--verify-worker",
                          "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN))
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["committed_tx"] > 0


def test_revwk_a_run_that_raises_before_its_event_loop_leaves_no_worker(monkeypatch):
    """``simulate`` forked the worker, then built the workload (signers, the first
    submission: ``next(stream)``) outside the ``try`` whose ``finally`` closes it. An
    exception there (a KeyboardInterrupt, a generator's error) left the worker running,
    its two pipe ends open in the caller and the membership's keys wrapped."""
    from citychain.sim import run as sim_run

    scenario = _capped(SCENARIOS / "teaching" / "normal-4.yaml", 20)
    before_children, before_pipes = set(_children()), _pipes()
    seen = {}

    def broken(*_args, **_kwargs):
        seen["set-up"] = True
        raise KeyboardInterrupt  # Ctrl-C while the first request is signed

    monkeypatch.setattr(sim_run, "submissions", broken)
    built = {}
    real_build = sim_run.build

    def spy(*args, **kwargs):
        built["run"] = real_build(*args, **kwargs)
        return built["run"]

    monkeypatch.setattr(sim_run, "build", spy)
    with pytest.raises(KeyboardInterrupt):
        simulate(scenario, verify_process=True)
    assert seen
    leftover = set(_children()) - before_children
    for pid in leftover:  # clean up what the run left, then fail
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not leftover, "the verify worker outlived the run"
    assert _pipes() == before_pipes, "the worker's pipes are still open"
    members = built["run"].membership.members.values()
    assert not any(type(key).__name__ == "_Key" for key, _org, _role in members)


# ---- claim 4: no zombies, no leaked descriptors -------------------------------------


def test_revwk_fifty_runs_leave_no_child_and_no_descriptor():
    """A run's history store lets go of its file when collected (a cycle: gc), which
    is the store's business; the worker's pipes and process go at the run's end."""
    import gc

    scenario = _capped(SCENARIOS / "teaching" / "normal-4.yaml", 8)
    simulate(scenario, verify_process=True)  # imports and caches made once
    gc.collect()
    before_children, before_fds = set(_children()), _fds()
    for _ in range(50):
        simulate(scenario, verify_process=True)
        assert set(_children()) == before_children
        assert _pipes() <= before_fds
    gc.collect()
    assert _fds() == before_fds


# ---- claim 3: signals -----------------------------------------------------------------


def _proc_children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _start_long(tmp_path: Path, **popen) -> tuple[subprocess.Popen, Path]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spec = tmp_path / "long.yaml"
    spec.write_text("base: taihu\nworkload:\n  transactions: 20000\n")
    proc = subprocess.Popen([sys.executable, "-m", "citychain.cli", "run", str(spec), "--scratch", str(scratch),
                             "--no-progress", "--json", "--verify-worker"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "stderr.txt", "wb"), stdin=subprocess.DEVNULL, **popen)
    return proc, scratch


def _worker_of(proc: subprocess.Popen, scratch: Path) -> int:
    deadline = time.monotonic() + 120
    while not (_proc_children(proc.pid) and list(scratch.glob("citychain-history-*"))):
        assert proc.poll() is None and time.monotonic() < deadline, "no verify worker started"
        time.sleep(0.02)
    return _proc_children(proc.pid)[0]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_revwk_a_signal_to_the_run_alone_ends_its_worker(tmp_path, signum):
    """The run killed (SIGKILL: nothing of it runs) or ended by its SIGTERM handler,
    which dies without unwinding: the worker must see the pipe close and leave."""
    proc, scratch = _start_long(tmp_path)
    worker = None
    try:
        worker = _worker_of(proc, scratch)
        time.sleep(1.0)
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == -signum
        deadline = time.monotonic() + 10
        while not _gone(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(worker), "the worker outlived its run's SIGKILL"
    finally:
        proc.kill()
        if worker is not None and not _gone(worker):
            os.kill(worker, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_revwk_a_signal_to_the_whole_process_group_ends_run_and_worker_and_removes_the_store(tmp_path, signum):
    # its own process group; a background job's ignored SIGINT put back to the default
    proc, scratch = _start_long(tmp_path, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    worker = None
    try:
        worker = _worker_of(proc, scratch)
        time.sleep(1.0)
        os.killpg(proc.pid, signum)
        code = proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while not _gone(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(worker)
    finally:
        proc.kill()
        if worker is not None and not _gone(worker):
            os.kill(worker, signal.SIGKILL)
    assert code != 0
    assert not list(scratch.glob("citychain-history-*"))


# ---- claim 2, in a whole run: a worker that dies, stalls or answers nonsense mid-run --


def _serving(kind: str):
    """A worker's loop that behaves for its first 40 requests, then misbehaves."""
    from citychain.sim import verify

    def serve(requests: int, answers: int, keys: list) -> None:
        inp = os.fdopen(requests, "rb", buffering=0)
        done = 0
        while True:
            head = inp.read(verify._HEAD.size)
            if len(head) < verify._HEAD.size:
                return
            member, sig_len, size = verify._HEAD.unpack(head)
            signature, data = _read(inp, sig_len), _read(inp, size)
            done += 1
            if done > 40:
                if kind == "dies":
                    os._exit(3)
                if kind == "stalls":
                    time.sleep(3600)
                if kind == "garbage":
                    os.write(answers, b"\xff")
                    continue
            try:
                keys[member].verify(signature, data)
                os.write(answers, bytes((verify.GOOD,)))
            except Exception:
                os.write(answers, b"\x00")

    return serve


def _read(inp, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = inp.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


@pytest.mark.parametrize("kind", ["dies", "stalls", "garbage"])
def test_revwk_a_worker_that_fails_mid_run_leaves_the_same_run(kind, tmp_path, monkeypatch):
    from citychain.sim import verify

    scenario = _capped(SCENARIOS / "faults" / "mixed-byzantine-20.yaml", 150)
    plain = _export(scenario, tmp_path / "plain", verify_threads=0, verify_process=False)
    monkeypatch.setattr(verify, "_serve", _serving(kind))
    closed = []
    real_close = verify.VerifyProcess.close

    def spy(self):
        closed.append((self.asked, self.gone))
        real_close(self)

    monkeypatch.setattr(verify.VerifyProcess, "close", spy)
    before = set(_children())
    ahead = _export(scenario, tmp_path / "ahead", verify_process=True)
    assert set(_children()) == before
    assert closed and closed[0][0] > 40
    # Only a dead worker is known to be gone (its pipe ends); a stalled one is never waited
    # for, and its garbage is checked again here.
    assert closed[0][1] is (kind == "dies")
    assert plain == ahead
    assert plain["dropped"].get("bad-signature", 0) > 0
    _same_tree(tmp_path / "plain", tmp_path / "ahead")


def test_revwk_the_command_exports_the_same_bytes_with_and_without_the_worker_and_any_hash_seed(tmp_path):
    """``citychain run`` as people run it: the worker on (default) with one hash seed,
    off with another; every exported file but the wall-clock ones byte for byte."""
    outs = []
    for flag, hashseed in (("--verify-worker", "1"), ("--no-verify-worker", "2")):
        out = tmp_path / flag.strip("-")
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        env.pop("CITYCHAIN_VERIFY_PROCESS", None)
        done = subprocess.run([sys.executable, "-m", "citychain.cli", "run", "mixed-byzantine-20", "--out", str(out),
                               "--no-progress", flag], cwd=ROOT, capture_output=True, text=True, timeout=600,
                              env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        outs.append(out)
    _same_tree(*outs)


def test_revwk_the_worker_keeps_a_bounded_number_of_answers():
    """Everything else a run keeps per envelope is bounded (``PENDING_LIMIT``, the
    verdict cache, history on disk: a run's memory must not grow with its length), but
    ``VerifyProcess.answers`` kept one byte per envelope ever handed to the worker, for
    the whole run. Only answers some ticket may still ask for need keeping; an older
    one asked for is checked here, to the same verdict."""
    from consensus.messages import Commit
    from node.signing import Signer

    from citychain.sim import verify

    membership, keys = _members()
    signer = Signer("m-0", keys["m-0"], "revwk")
    envs = [signer.sign(Commit(0, s, "ab" * 32)) for s in range(1, 51)]
    forged = replace(envs[0], signature=bytes(64))
    worker = verify.VerifyProcess(membership)
    rounds = (2 * verify.PENDING_LIMIT) // len(envs) + 200
    _alarm(180)
    try:
        for env in envs:
            worker.sent(env)
        early = dict(worker.pending)  # tickets whose answers will be long gone when asked
        worker.pending.clear()
        for _round in range(rounds):
            for env in envs:
                worker.sent(env)
            worker.pending.clear()  # lost in the network: never asked about
        worker.sent(envs[0])
        worker.sent(forged)
        assert membership.authenticate(envs[0]) is None and membership.authenticate(forged) == "bad-signature"
        kept = len(worker.answers)
        # an old ticket still answers, the same as checking here
        assert all(ticket.result() is None for _k, _d, ticket in early.values())
        assert not worker.gone
    finally:
        signal.alarm(0)
        worker.close()
    assert worker.asked > 2 * verify.PENDING_LIMIT
    assert kept <= 2 * verify.PENDING_LIMIT + verify.BATCH, f"{kept} answers kept"


def test_revwk_no_descriptor_is_left_when_the_second_pipe_cannot_be_had():
    """Room for one pipe, not two (EMFILE at the second ``os.pipe``): ``VerifyProcess``
    raises OSError, which ``simulate`` takes for "run without a worker", but the first
    pipe's two ends stayed open, two descriptors lost per run in a process at its limit."""
    import resource

    from citychain.sim.verify import VerifyProcess

    membership, _keys = _members()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = max(_fds()) + 40
    resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
    filler = []
    try:
        try:
            while True:
                filler.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        for _ in range(3):  # room for one pipe, not two (and for listing /proc/self/fd)
            os.close(filler.pop())
        before = _fds()
        with pytest.raises(OSError):
            VerifyProcess(membership)
        after = _fds()
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert not any(type(key).__name__ == "_Key" for key, _org, _role in membership.members.values())
    assert after == before, f"left open: {sorted(after - before)}"


def test_revwk_a_worker_reaped_elsewhere_is_never_signalled_or_waited_for_by_its_number(monkeypatch):
    """Another part of the process reaps the worker (a SIGCHLD handler calling
    ``os.wait``, or SIGCHLD ignored, where the kernel reaps it at once): its PID is free
    and, with pid_max 32768, soon another process's. ``close`` then sent SIGKILL to that
    number and waited on it: it could kill an unrelated process, or reap (and steal the
    exit status of) a later child of the caller's that got the same number."""
    from citychain.sim.verify import VerifyProcess

    membership, _keys = _members()
    worker = VerifyProcess(membership)
    pid = worker.pid
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)  # reaped by someone else: ``pid`` may now name any process
    signalled, waited = [], []
    real_kill, real_waitpid = os.kill, os.waitpid

    def kill(p, s):
        signalled.append(p)
        return real_kill(p, s)

    def waitpid(p, o):
        waited.append(p)
        return real_waitpid(p, o)

    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(os, "waitpid", waitpid)
    worker.close()
    assert pid not in signalled and pid not in waited
    assert not any(type(key).__name__ == "_Key" for key, _org, _role in membership.members.values())


def test_revwk_a_stopped_worker_cannot_block_the_run_in_a_full_request_pipe(monkeypatch):
    """A 5 s limit guarded the wait for an answer, not the write of requests: with the
    worker stopped (SIGSTOP, or stuck on a lock it inherited) and envelopes sent that no
    node checks for a while (every node down or cut off while clients go on submitting),
    the request pipe fills (1 MiB, a few thousand envelopes) and ``_flush``'s blocking
    ``os.write`` waited for ever: the run hung."""
    from consensus.messages import Commit
    from node.signing import Signer

    from citychain.sim import verify

    monkeypatch.setattr(verify, "OUTBOX_LIMIT", 1 << 20)
    monkeypatch.setattr(verify, "STALL_LIMIT", 0.3)
    membership, keys = _members()
    signer = Signer("m-0", keys["m-0"], "revwk")
    envs = [signer.sign(Commit(0, s, "ab" * 32)) for s in range(1, 51)]
    forged = replace(envs[0], signature=bytes(64))
    worker = verify.VerifyProcess(membership)
    os.kill(worker.pid, signal.SIGSTOP)
    _alarm(30)
    try:
        for _round in range(400):  # 20,000 envelopes, about 4 MiB of requests
            for env in envs:
                worker.sent(env)
            worker.pending.clear()  # not checked (yet): sent to nodes that are down
        time.sleep(0.5)  # past STALL_LIMIT, still not a single answer
        worker.sent(envs[1])
        for env in envs[2:2 + verify.BATCH]:  # the next flush finds it stalled
            worker.sent(env)
        worker.pending.clear()
        worker.sent(envs[1])
        worker.sent(forged)
        verdicts = [membership.authenticate(envs[1]), membership.authenticate(forged)]
        assert worker.gone
    finally:
        signal.alarm(0)
        worker.close()
    assert verdicts == [None, "bad-signature"]
