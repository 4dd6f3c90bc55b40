"""Who runs which node where: placing nodes and clients on organisations and sites.

Nodes are dealt to organisations by smooth weighted round-robin, so any node
count (``--nodes 4`` or ``60``) keeps each organisation's share of the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from .scenario import Scenario


@dataclass(frozen=True, slots=True)
class NodePlacement:
    id: str
    org: str
    site: str


@dataclass(frozen=True, slots=True)
class ClientPlacement:
    id: str
    org: str
    gateway: str  # the node this client submits to (one of its own organisation's, if any)


def member_id(prefix: str, i: int, count: int) -> str:
    return f"{prefix}-{i:0{max(2, len(str(count - 1)))}d}"


def _smooth_round_robin(weights: list[int], count: int) -> list[int]:
    current = [0] * len(weights)
    total = sum(weights)
    picks = []
    for _ in range(count):
        for i, w in enumerate(weights):
            current[i] += w
        best = max(range(len(weights)), key=lambda i: (current[i], -i))
        current[best] -= total
        picks.append(best)
    return picks


def place_nodes(scenario: Scenario) -> list[NodePlacement]:
    orgs = scenario.organisations
    picks = _smooth_round_robin([o.weight for o in orgs], scenario.nodes)
    return [NodePlacement(member_id("node", i, scenario.nodes), orgs[k].id, orgs[k].site)
            for i, k in enumerate(picks)]


def place_observers(scenario: Scenario) -> list[NodePlacement]:
    """Observers go to organisations in turn (by weight, like consensus nodes)."""
    orgs = scenario.organisations
    picks = _smooth_round_robin([o.weight for o in orgs], scenario.observers)
    return [NodePlacement(member_id("observer", i, scenario.observers), orgs[k].id, orgs[k].site)
            for i, k in enumerate(picks)]


def place_clients(scenario: Scenario, nodes: list[NodePlacement]) -> list[ClientPlacement]:
    orgs = scenario.organisations
    count = scenario.workload.clients
    by_org: dict[str, list[str]] = {}
    for node in nodes:
        by_org.setdefault(node.org, []).append(node.id)
    clients = []
    used: dict[str, int] = {}
    for i in range(count):
        org = orgs[i % len(orgs)].id
        own = by_org.get(org)
        if own:
            k = used.get(org, 0)
            used[org] = k + 1
            gateway = own[k % len(own)]
        else:
            gateway = nodes[i % len(nodes)].id
        clients.append(ClientPlacement(member_id("client", i, count), org, gateway))
    return clients
