"""Client load: who submits what, when. Deterministic given the workload's generator.

Arrivals are a Poisson process at ``rate_tps``; each transaction picks an op from
the scenario's mix by weight and a client round-robin. Arguments come from a
per-app generator that remembers what earlier transactions created, so flows are
realistic (a record is deleted only after it was written, mostly).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterator

from consensus.messages import Request, Signed

from .layout import ClientPlacement
from .scenario import WorkloadSpec
from .signing import Signer


@dataclass
class Submission:
    at: int  # ns
    client: ClientPlacement
    envelope: Signed


class FlowState:
    """What the generators remember across transactions of one run."""

    def __init__(self):
        self.records: dict[str, list[str]] = {}  # org -> keys written


def _records_put(rng: random.Random, client: ClientPlacement, i: int, flows: FlowState) -> dict:
    keys = flows.records.setdefault(client.org, [])
    if keys and rng.random() < 0.3:
        key = rng.choice(keys)  # update an existing record
    else:
        key = f"rec-{i:06d}"
        keys.append(key)
    return {"key": key, "value": f"{client.id} entry {i}"}


def _records_delete(rng: random.Random, client: ClientPlacement, i: int, flows: FlowState) -> dict:
    keys = flows.records.get(client.org)
    if not keys:
        return {"key": f"rec-missing-{i}"}  # rejected by the app: nothing to delete
    return {"key": keys.pop(rng.randrange(len(keys)))}


GENERATORS: dict[tuple[str, str], Callable[[random.Random, ClientPlacement, int, FlowState], dict]] = {
    ("records", "put"): _records_put,
    ("records", "delete"): _records_delete,
}


def submissions(spec: WorkloadSpec, clients: list[ClientPlacement], signers: dict[str, Signer],
                rng: random.Random, start: int = 0) -> Iterator[Submission]:
    """Yield the run's submissions in time order, signing each as it is produced."""
    mix = [(m.app, m.op) for m in spec.mix]
    weights = [m.weight for m in spec.mix]
    for app, op in mix:
        if (app, op) not in GENERATORS:
            raise ValueError(f"no workload generator for {app}.{op}")
    flows = FlowState()
    nonces = [0] * len(clients)
    t = float(start)
    for i in range(spec.transactions):
        t += rng.expovariate(spec.rate_tps) * 1e9
        k = i % len(clients)
        client = clients[k]
        app, op = mix[0] if len(mix) == 1 else rng.choices(mix, weights)[0]
        args = GENERATORS[(app, op)](rng, client, i, flows)
        nonces[k] += 1
        at = int(t)
        request = Request(nonce=nonces[k], app=app, op=op, args=args, ts=at)
        yield Submission(at, client, signers[client.id].sign(request))
