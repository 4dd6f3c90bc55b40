"""Fair queuing in the simulator (node/fairqueue.py): a member's flood waits in its own
queue, so honest messages at the flooded node keep their latency (virtual time), the
flood's own messages wait, and a sender's queue is bounded."""

from __future__ import annotations

import citychain.sim.run as sim_run
from citychain.scenario import load_scenario
from citychain.sim.run import simulate
from consensus.encoding import sha256_hex
from consensus.messages import Prepare
from node.fairqueue import Turns
from node.signing import Signer

MS = 1_000_000
ATTACKER, VICTIM = "node-03", "node-00"
FLOOD_AT = 1_000 * MS
BURST = 3_000  # within its bucket (5,000 at once), three times its queue (1,000)


def _small(taihu_path):
    spec = load_scenario(taihu_path).with_overrides(nodes=4)
    data = spec.model_dump()
    data.update(byzantine=[], faults=[], workload={**data["workload"], "transactions": 300, "rate_tps": 100},
                run={**data["run"], "drain_s": 10.0})
    return type(spec).model_validate(data)


def _run(taihu_path, monkeypatch, flood: bool):
    """Each message the victim's replica is handed, with the time it arrived at the node
    and the time its work was done: {sender: [(arrived, worked), ...]} from FLOOD_AT on."""
    seen: dict[str, list[tuple[int, int]]] = {}
    original_build = sim_run.build

    def build(spec, record=False):
        run = original_build(spec, record=record)
        victim = run.nodes[VICTIM]
        arrived: dict[int, int] = {}
        on_message = run.network.handlers[VICTIM]

        def tapped(env, now, link=None):
            arrived.setdefault(id(env), now)
            on_message(env, now, link)
        tapped.__self__ = victim
        run.network.handlers[VICTIM] = tapped
        run.network._changed()
        deliver = victim.replica.deliver

        def watched(env, t):
            at = arrived.pop(id(env), None)
            if at is not None and at >= FLOOD_AT:
                seen.setdefault(env.signer, []).append((at, t))
            return deliver(env, t)
        victim.replica.deliver = watched
        if flood:
            ident = run.genesis.identities[ATTACKER]
            junk = Signer(ATTACKER, ident.key, run.genesis.chain_id).sign(Prepare(0, 1, sha256_hex(b"junk")))
            for _ in range(BURST):
                run.engine.at(FLOOD_AT, lambda e, now: run.network.send(ATTACKER, VICTIM, e, now), junk)
        return run

    monkeypatch.setattr(sim_run, "build", build)
    return simulate(_small(taihu_path)), seen


def test_a_flood_from_one_member_delays_only_that_member(taihu_path, monkeypatch):
    run, seen = _run(taihu_path, monkeypatch, flood=True)
    junk = [(a, w) for a, w in seen[ATTACKER] if a < FLOOD_AT + 200 * MS]
    honest = [(a, w) for s in ("node-01", "node-02") for a, w in seen.get(s, []) if a < FLOOD_AT + 100 * MS]
    assert junk and honest
    # The flood's own messages wait behind each other: about 1,000 verifications (112 ms)...
    assert max(w - a for a, w in junk) > 80 * MS
    # ...while every honest message that arrived meanwhile waited at most the shared window
    # (5 ms) and a turn, not behind the flood.
    assert max(w - a for a, w in honest) < 8 * MS, sorted(w - a for a, w in honest)[-5:]
    drops = run.metrics.drops[VICTIM]
    assert drops["sender-queue-full"] > BURST // 2  # its queue is bounded; the rest was counted
    assert "rate-limited" not in drops and "backlog-full" not in drops
    assert all(run.metrics.answered(d, run.f) for d in run.metrics.submitted)


def test_the_turns_go_round_by_the_work_each_message_cost():
    turns = Turns(quantum=100, per_sender=3, max_held=5)
    for k in range(4):
        assert turns.hold("flooder", ("flooder", k)) == (None if k < 3 else "sender-queue-full")
    assert turns.hold("a", ("a", 0)) is None and turns.hold("b", ("b", 0)) is None
    assert turns.hold("c", ("c", 0)) == "backlog-full"  # five held in all
    served = []
    while turns.held:
        sender, item = turns.next()
        served.append(item)
        turns.charge(sender, 300 if item == ("flooder", 0) else 100)  # its first message cost three turns
    assert served == [("flooder", 0), ("a", 0), ("b", 0), ("flooder", 1), ("flooder", 2)]
    assert turns.queues == {} and not turns.order and turns.credit == {}


def test_an_expensive_sender_sits_out_the_turns_it_used():
    turns = Turns(quantum=100, per_sender=10, max_held=0)
    for k in range(3):
        turns.hold("big", ("big", k))
        turns.hold("small", ("small", k))
    served = []
    while turns.held:
        sender, item = turns.next()
        served.append(item)
        turns.charge(sender, 250 if sender == "big" else 100)
    # Each gets a quantum (100) a round: "small" one message a round, "big", paying 250 a
    # message, one every two and a half rounds (it went first, so its debt comes after).
    assert served == [("big", 0), ("small", 0), ("small", 1), ("big", 1), ("small", 2), ("big", 2)]
