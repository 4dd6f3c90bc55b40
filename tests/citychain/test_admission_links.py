"""Adversarial review (rev1) of the admission of issue 12 (branch flood).

Finding A1: in the simulator a message's token bucket is keyed on the signer the
envelope *claims*, before its signature is checked. Any member (or anyone who can put
bytes on a link) can send junk naming an honest member, with a bad signature, at the
bucket's rate: the honest member's own messages to that node are then refused as
``rate-limited``. Done to every honest pair, the honest nodes hear nobody but the
attacker and the chain stops.

Finding A2: a message naming no member skips admission entirely (the bucket *and* the
backlog bound) and is still charged a signature verification on the node's CPU: junk
from "mallory" grows a node's backlog without bound, and then every honest message is
refused as ``backlog-full``.
"""

from __future__ import annotations

import citychain.sim.run as sim_run
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from consensus.encoding import sha256_hex
from consensus.messages import Prepare, Signed
from node.codec import signed_bytes, wire_size

ATTACKER = "node-03"
HONEST = ("node-00", "node-01", "node-02")
MS = 1_000_000


def _small(taihu_path, transactions=200, rate=100):
    spec = load_scenario(taihu_path).with_overrides(nodes=4)
    data = spec.model_dump()
    data.update(byzantine=[], faults=[], workload={**data["workload"], "transactions": transactions,
                                                   "rate_tps": rate},
                run={**data["run"], "drain_s": 10.0})
    return type(spec).model_validate(data)


def _forged(chain_id: str, claimed: str, i: int) -> Signed:
    """A PREPARE that names ``claimed`` as its signer, with a signature that is not its."""
    message = Prepare(0, 1, sha256_hex(f"junk-{claimed}-{i}".encode()))
    data = signed_bytes(message, chain_id, claimed)
    signature = bytes(64)
    return Signed(message, claimed, signature, data, sha256_hex(data), wire_size(data, signature, message))


def test_junk_naming_honest_members_does_not_silence_them(taihu_path, monkeypatch):
    """node-03 sends each honest node forged PREPAREs naming the two other honest nodes,
    at exactly the bucket's rate (5,000 a second) after one burst, from 0 to 3 s, over
    its own link. No forged message is ever acted on (every one fails its signature
    check), so the three honest nodes, a quorum, must keep committing."""
    scenario = _small(taihu_path)
    heights = {}
    original_build = sim_run.build

    def build_with_forgeries(spec, record=False):
        run = original_build(spec, record=record)
        chain = run.genesis.chain_id
        interval = 200_000  # ns: 1 s / 5,000
        for victim in HONEST:
            for claimed in HONEST:
                if claimed == victim:
                    continue
                junk = _forged(chain, claimed, 0)  # one object: its verdict is cached, so cheap to run
                for i in range(5_000):  # the burst, at t = 0
                    run.engine.at(0, lambda env, now, v=victim: run.network.send(ATTACKER, v, env, now), junk)
                for k in range(1, 3 * 5_000):  # then one per interval, for 3 s
                    run.engine.at(k * interval, lambda env, now, v=victim: run.network.send(ATTACKER, v, env, now),
                                  junk)
        run.engine.at(3_000 * MS, lambda _a, _now: heights.update(
            {n: run.nodes[n].ledger.height for n in HONEST}), None)
        return run

    monkeypatch.setattr(sim_run, "build", build_with_forgeries)
    run = simulate(scenario)
    drops = run.metrics.drops
    # 100 transactions a second for 3 s were submitted: a quorum of honest nodes should
    # have committed blocks in that time (they do in well under 100 ms without the junk).
    assert all(h > 0 for h in heights.values()), (heights, {n: dict(drops.get(n, {})) for n in HONEST})


def test_junk_from_no_member_does_not_grow_a_nodes_backlog_without_bound(taihu_path, monkeypatch):
    """Junk naming nobody ('mallory') is refused as unknown-signer, but it skips admission
    (bucket and backlog bound) and is charged a verification on the node's CPU each: a
    node fed 200,000 of them at once has 22 s of modelled work queued, over the 10 s the
    backlog bound promises, and refuses honest messages as backlog-full meanwhile."""
    scenario = _small(taihu_path)
    seen = {}
    original_build = sim_run.build

    def build_with_junk(spec, record=False):
        run = original_build(spec, record=record)
        chain = run.genesis.chain_id
        victim = run.nodes["node-01"]
        junk = _forged(chain, "mallory", 0)
        for _ in range(200_000):
            run.engine.at(100 * MS, victim.on_message, junk)
        run.engine.at(100 * MS + 1, lambda _a, now: seen.update(backlog_ms=(victim.busy_until - now) / MS), None)
        return run

    monkeypatch.setattr(sim_run, "build", build_with_junk)
    run = simulate(scenario)
    limit_ms = run.nodes["node-01"].admission.limits.max_backlog_ms
    drops = run.metrics.drops.get("node-01", {})
    assert seen["backlog_ms"] <= limit_ms, (seen, dict(drops))
    assert drops.get("backlog-full", 0) == 0, dict(drops)
