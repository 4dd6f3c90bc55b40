"""Issue 12, flooding: a faulty member that floods one node with validly signed messages,
replays and junk cannot grow that node's memory without bound, and the honest nodes keep
committing; every refused message is counted under a reason (docs/messages.md,
"Admission and bounds")."""

from __future__ import annotations

import random
import tracemalloc

import pytest

import citychain.sim.run as sim_run
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from consensus.encoding import sha256_hex
from consensus.messages import Checkpoint, Commit, NewViewRequest, Prepare, Signed, ViewChange
from consensus.replica import MAX_FUTURE_VIEWS
from node.signing import Signer

ATTACKER, VICTIM = "node-03", "node-01"
FLOOD = 100_000
MS = 1_000_000


def _small(taihu_path, transactions=300, rate=100):
    spec = load_scenario(taihu_path).with_overrides(nodes=4)
    data = spec.model_dump()
    data.update(byzantine=[], faults=[], workload={**data["workload"], "transactions": transactions,
                                                   "rate_tps": rate},
                run={**data["run"], "drain_s": 20.0})
    return type(spec).model_validate(data)


def _flood_messages(signer: Signer, rng: random.Random, distinct: int) -> list[Signed]:
    """Validly signed messages of every kind a replica keeps something for, with digests,
    sequences and views chosen to reach as many tables as possible."""
    out = []
    for i in range(distinct):
        digest = sha256_hex(rng.randbytes(16))
        kind = i % 5
        if kind == 0:
            out.append(signer.sign(Prepare(rng.randrange(0, 40), rng.randrange(1, 60), digest)))
        elif kind == 1:
            out.append(signer.sign(Commit(rng.randrange(0, 40), rng.randrange(1, 60), digest)))
        elif kind == 2:
            out.append(signer.sign(Checkpoint(10 * rng.randrange(1, 8), digest, digest)))
        elif kind == 3:
            out.append(signer.sign(ViewChange(rng.randrange(1, 10_000), 0, (), ())))
        else:
            out.append(signer.sign(NewViewRequest(rng.randrange(1, 10_000))))
    return out


def _junk(template: Signed, rng: random.Random) -> Signed:
    """Bytes that claim to come from a member (bad signature) or from nobody."""
    signer = template.signer if rng.random() < 0.5 else "mallory"
    return Signed(template.message, signer, rng.randbytes(64), template.data, template.digest, template.size)


def _state_size(node) -> dict[str, int]:
    """What the victim holds that a peer's messages can add to."""
    r = node.replica
    return {
        "future": len(r.future),
        "vote-keys": sum(len(s.prepares) + len(s.commits) for s in r.log.values()),
        "votes": sum(len(v) for s in r.log.values() for t in (s.prepares, s.commits) for v in t.values()),
        "slots": len(r.log),
        "checkpoint-keys": sum(len(c) for c in r.checkpoints.values()),
        "view-changes": sum(len(v) for v in r.view_changes.values()),
        "view-change-views": len(r.view_changes),
        "evidence": sum(len(v) for v in r.evidence.values()) + len(r.asked),
        "far": len(r.far_ahead) + len(r.far_working) + len(r.ahead),
        "answers": len(r.answered) + len(r.served),
        "pending": len(r.pending),
        "buckets": len(node.admission.full_at),
        "verified": len(node.verified),
    }


@pytest.mark.slow
def test_a_flooded_node_stays_bounded_and_the_honest_nodes_keep_committing(taihu_path, monkeypatch):
    scenario = _small(taihu_path)
    rng = random.Random(12)
    built = {}
    sizes = []
    original_build = sim_run.build

    def build_with_flood(spec, record=False):
        run = original_build(spec, record=record)
        built["run"] = run
        ident = run.genesis.identities[ATTACKER]
        signer = Signer(ATTACKER, ident.key, run.genesis.chain_id)
        distinct = _flood_messages(signer, rng, 10_000)
        victim = run.nodes[VICTIM]
        # 100,000 messages over 2 s of virtual time from 0.2 s on (50,000 a second):
        # fresh ones, replays of them and junk, straight into the victim (the attacker's
        # uplink is not the limit).
        for i in range(FLOOD):
            roll = rng.random()
            env = distinct[i % len(distinct)] if roll < 0.8 else _junk(distinct[i % len(distinct)], rng)
            run.engine.at(200 * MS + i * 20_000, victim.on_message, env)
        for t in range(0, 4000, 250):
            run.engine.at(t * MS, lambda _a, _now: sizes.append(_state_size(victim)), None)
        return run

    monkeypatch.setattr(sim_run, "build", build_with_flood)
    tracemalloc.start()
    try:
        run = simulate(scenario)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n = len(run.genesis.replicas)
    victim = run.nodes[VICTIM]
    window = victim.replica.window
    # Honest nodes (the victim included) committed every transaction.
    for node_id in ("node-00", "node-01", "node-02"):
        assert run.nodes[node_id].ledger.transactions == scenario.workload.transactions, node_id
    assert all(run.metrics.answered(d, run.f) for d in run.metrics.submitted)
    # The victim's tables stayed within their bounds all along, whatever was sent.
    for size in sizes + [_state_size(victim)]:
        assert size["future"] <= (MAX_FUTURE_VIEWS + 1) * 2 * window
        assert size["slots"] <= window
        assert size["vote-keys"] <= 2 * window * (MAX_FUTURE_VIEWS + 1) * n
        assert size["checkpoint-keys"] <= (window // 10) * n
        assert size["view-change-views"] <= MAX_FUTURE_VIEWS + 1
        assert size["view-changes"] <= (MAX_FUTURE_VIEWS + 1) * n
        assert size["far"] <= 3 * n
        assert size["answers"] <= n + 3 * n
        assert size["buckets"] <= n
        assert size["verified"] <= victim.VERIFIED_CACHE
    # The flood was refused, mostly before any verification, and counted by reason.
    drops = run.metrics.drops.get(VICTIM)
    assert drops["rate-limited"] > FLOOD // 2
    assert drops["conflicting-vote"] > 0 and drops["unknown-signer"] > 0 and drops["bad-signature"] > 0
    assert sum(drops.values()) >= FLOOD * 0.95  # the rest: the first votes, VIEW-CHANGEs... kept
    # Other nodes saw none of it and refused nothing for admission.
    for node_id in ("node-00", "node-02"):
        assert not {"rate-limited", "backlog-full", "sender-queue-full"} & set(run.metrics.drops.get(node_id, {}))
    assert peak < 400 * 1024 * 1024  # the whole run, flood and signatures included



@pytest.mark.parametrize("name", ["faults/mixed-byzantine-20", "faults/silent-f-of-60"])
def test_honest_load_never_meets_the_admission_limits(name):
    """The defaults sit far above what honest replicas send: shipped scenarios at 20 and 60
    nodes (Byzantine ones included) run without one admission drop."""
    from tests.conftest import SCENARIOS
    run = simulate(load_scenario(SCENARIOS / f"{name}.yaml"))
    drops = run.metrics.drops_by_reason()
    assert drops["rate-limited"] == drops["backlog-full"] == drops["sender-queue-full"] == 0
    assert drops["fetch-over-budget"] == drops["mempool-client-full"] == 0
