"""Helpers for hostile-input simulations: a genesis with a doctored certificate, and
envelopes injected or replayed at chosen virtual times, without touching the simulator."""

from __future__ import annotations

import dataclasses
import datetime

import citychain.sim.run as simrun
from citychain.genesis import SIM_EPOCH, Genesis
from citychain.scenario import Scenario, load_scenario
from node.identity import NOT_AFTER, NOT_BEFORE, CertificateAuthority, cert_pem

MS = 1_000_000


def small(name: str = "chongqing", nodes: int = 4, transactions: int = 200, rate_tps: int = 100,
          faults: list | None = None) -> Scenario:
    """A short run: ``transactions`` at ``rate_tps`` (200 at 100/s: two virtual seconds)."""
    data = load_scenario(name).with_overrides(nodes=nodes).model_dump()
    data["workload"]["transactions"] = transactions
    data["workload"]["rate_tps"] = rate_tps
    if faults is not None:
        data["faults"] = faults
    return Scenario.model_validate(data)


def at(seconds: float) -> datetime.datetime:
    """The calendar time of virtual time ``seconds`` in a simulation."""
    return SIM_EPOCH + datetime.timedelta(seconds=seconds)


def reissue(genesis: Genesis, member: str, valid=(NOT_BEFORE, NOT_AFTER), ca: CertificateAuthority | None = None):
    """Give ``member`` a new certificate (other dates, or from another CA) in the genesis."""
    ident = genesis.identities[member]
    cert = (ca or genesis.ca).issue(member, ident.org, ident.role, ident.key.public_key(), valid=valid)
    for entry in genesis.doc["members"] + genesis.doc["clients"]:
        if entry["id"] == member:
            entry["cert"] = cert_pem(cert)
    genesis.identities[member] = dataclasses.replace(ident, cert=cert)
    return genesis


def simulate(scenario: Scenario, monkeypatch, tweak=None, inject=None) -> simrun.SimRun:
    """``simulate(scenario)`` with ``tweak(genesis)`` applied to the genesis and
    ``inject(run)`` called on the built run before it starts (to schedule events)."""
    if tweak is not None:
        real_genesis = simrun.build_genesis
        monkeypatch.setattr(simrun, "build_genesis", lambda sc, **kw: tweak(real_genesis(sc, **kw)))
    if inject is not None:
        real_build = simrun.build

        def build(sc, record=False):
            run = real_build(sc, record=record)
            inject(run)
            return run

        monkeypatch.setattr(simrun, "build", build)
    return simrun.simulate(scenario)


class Submissions:
    """Records every client envelope the workload sends, to send them again later."""

    def __init__(self, run: simrun.SimRun):
        self.envelopes: dict[str, object] = {}
        self.run = run
        network = run.network
        real = network.client_send

        def client_send(near, dst, env, when):
            self.envelopes.setdefault(env.digest, (near, env))
            real(near, dst, env, when)

        self._real = real
        network.client_send = client_send

    def replay_at(self, when: int, to: list[str] | None = None) -> None:
        """At virtual time ``when``, send every request submitted so far again, to ``to`` (all nodes)."""
        def go(_arg, now):
            for near, env in list(self.envelopes.values()):
                for dst in to or [n for n in self.run.genesis.replicas]:
                    self._real(near, dst, env, now)
        self.run.engine.at(when, go, None)


def ledger_digests(run: simrun.SimRun, node: str) -> list[str]:
    return [r.digest for e in run.nodes[node].ledger.entries for r in e.block.requests]


def once_everywhere(run: simrun.SimRun, submitted: set[str]) -> dict:
    """Every honest ledger holds each transaction at most once, and every node that is up
    holds all of ``submitted``; the run is safe and committed everything. Its summary."""
    from collections import Counter

    from citychain.summary import summarize

    for node in run.honest:
        digests = ledger_digests(run, node)
        twice = [d for d, k in Counter(digests).items() if k > 1]
        assert twice == [], f"{node} executed {len(twice)} transactions twice"
        if not run.nodes[node].down:
            assert set(digests) == submitted, node
    s = summarize(run, "replay")
    assert s["safety_violations"] == 0 and s["agreement"] is True
    assert s["committed_tx"] == s["submitted_tx"]
    return s
