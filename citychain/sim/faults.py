"""Turning a scenario's faults into a plan: who is Byzantine, and what happens when.

Random faults are drawn from the scenario seed with their own generator, so the
same seed always gives the same schedule, and changing the workload does not
change the faults.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from ..genesis import Genesis
from ..scenario import FaultEvent, LinkChange, Scenario

MS = 1_000_000
_NODE = re.compile(r"node-[0-9]+")


@dataclass(frozen=True, slots=True)
class Action:
    at: int  # ns
    kind: str  # crash | recover | pause | resume | partition | cut | heal | link
    target: str | None = None  # node id, or "primary" (resolved when it happens)
    groups: tuple[frozenset[str], ...] = ()
    link: LinkChange | None = None

    def describe(self) -> str:
        if self.kind == "partition":
            return "partition " + " | ".join(",".join(sorted(g)) for g in self.groups)
        if self.kind == "cut":
            return f"cut {','.join(sorted(self.groups[0]))} -> {','.join(sorted(self.groups[1]))}"
        if self.kind == "link":
            return f"link {'-'.join(self.link.between)} latency={self.link.latency_ms} loss={self.link.loss}"
        return f"{self.kind} {self.target}" if self.target else self.kind


@dataclass(frozen=True, slots=True)
class Misbehaviour:
    """What one Byzantine node does (node/byzantine.py), with its parameters."""

    behaviour: str
    delay: int = 200 * MS  # ns, for 'delay'
    targets: tuple[str, ...] | None = None  # genesis ids; None: the behaviour's default
    kinds: frozenset[str] | None = None  # message kinds, for 'selective'


@dataclass
class FaultPlan:
    byzantine: dict[str, Misbehaviour] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)

    @property
    def last_heal(self) -> int:
        """When the last timed fault ended (0 if there were none): liveness is judged from here."""
        return max((a.at for a in self.actions), default=0)



def node_name(genesis: Genesis, ref: str) -> str:
    """'node-3' -> the genesis id of node 3 ('node-03' in a chain of 10 to 100)."""
    if ref == "primary":
        return ref
    return genesis.nodes[int(ref.split("-")[1])].id


def _groups(genesis: Genesis, partition: list[list[str]], keep_empty: bool = False) -> tuple[frozenset[str], ...]:
    """Node ids per group. A site with no node at this chain's size adds nobody (the scenario
    checked that every name is a node or one of its sites), and a partition group left with
    nobody is dropped (docs/scenarios.md, "Faults"), so a fault scenario runs at any --nodes."""
    by_site: dict[str, set[str]] = {}
    for n in genesis.nodes:
        by_site.setdefault(n.site, set()).add(n.id)
    out = []
    for group in partition:
        members: set[str] = set()
        for ref in group:
            members |= {node_name(genesis, ref)} if _NODE.fullmatch(ref) and ref not in by_site else by_site.get(ref, set())
        if members or keep_empty:
            out.append(frozenset(members))
    return tuple(out)


def _action(genesis: Genesis, event: FaultEvent) -> Action:
    at = round(event.at_ms * MS)
    kind = event.action
    if kind == "partition":
        return Action(at, kind, groups=_groups(genesis, event.partition))
    if kind == "cut":
        return Action(at, kind, groups=_groups(genesis, [event.cut.sources, event.cut.targets], keep_empty=True))
    if kind == "link":
        return Action(at, kind, link=event.link)
    if kind == "heal":
        return Action(at, kind)
    return Action(at, kind, target=node_name(genesis, getattr(event, kind)))


def plan_faults(scenario: Scenario, genesis: Genesis) -> FaultPlan:
    plan = FaultPlan()
    for spec in scenario.byzantine:
        targets = None if spec.targets is None else tuple(node_name(genesis, t) for t in spec.targets)
        kinds = None if spec.kinds is None else frozenset(spec.kinds)
        plan.byzantine[node_name(genesis, spec.node)] = Misbehaviour(spec.behaviour, round(spec.delay_ms * MS),
                                                                     targets, kinds)
    plan.actions = [_action(genesis, e) for e in scenario.faults]
    rf = scenario.random_faults
    if rf is not None:
        rng = random.Random(f"citychain/{scenario.seed}/faults")
        f = (len(genesis.nodes) - 1) // 3
        count = f if rf.byzantine == "f" else rf.byzantine
        free = [n.id for n in genesis.nodes if n.id not in plan.byzantine]
        chosen = rng.sample(free, count + rf.crashes)
        for node in chosen[:count]:
            plan.byzantine[node] = Misbehaviour(rng.choice(rf.behaviours))
        duration_ms = 1000 * scenario.workload.transactions / scenario.workload.rate_tps
        start, end = rf.window_ms or (0.0, max(duration_ms, 1.0))
        for node in chosen[count:]:
            down = rng.uniform(start, end)
            up = down + rng.uniform(2 * scenario.consensus.view_change_timeout_ms, max(end - start, 1.0))
            plan.actions += [Action(round(down * MS), "crash", node), Action(round(up * MS), "recover", node)]
    plan.actions.sort(key=lambda a: a.at)
    return plan
