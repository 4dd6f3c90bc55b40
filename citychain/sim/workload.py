"""Client load: who submits what, when. Deterministic given the workload's generator.

Arrivals are a Poisson process at ``rate_tps``; each transaction picks an op from
the scenario's mix by weight. A per-op generator chooses a client of an
organisation allowed to do it and arguments that follow realistic flows: a batch
is registered before it is transferred, a grant precedes a query, a document is
anchored before it is verified. Flows refer only to things created some
transactions earlier (``lag``), so the creating transaction has usually committed.
A small share of transactions is deliberately wrong (the wrong department, a
tampered document, an expired grant) and must be rejected with a reason.
"""

from __future__ import annotations

import hashlib
import random
from array import array
from dataclasses import dataclass, field
from typing import Callable, Iterator

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consensus.messages import Request, Signed
from node.signing import Signer

from ..layout import ClientPlacement
from ..scenario import WorkloadSpec
from ..sealing import seal, wrap

INVALID = 0.04  # share of deliberately invalid transactions, for ops that have an invalid form
DAY_NS = 86_400 * 10**9
SECOND_NS = 10**9


@dataclass
class Submission:
    at: int  # ns
    client: ClientPlacement
    envelope: Signed


@dataclass
class FlowState:
    """What the generators remember across transactions of one run: (index, item) lists."""

    # org -> the indexes i of the records written (key ``rec-{i:06d}``): 8 bytes each, not a string
    records: dict[str, array] = field(default_factory=dict)
    licences: list = field(default_factory=list)  # (i, licence id, type)
    accounts: list = field(default_factory=list)  # (i, citizen)
    grants: list = field(default_factory=list)  # (i, citizen, org, until)
    batches: list = field(default_factory=list)  # (i, batch id)
    custody: dict = field(default_factory=dict)  # batch id -> org (as the workload believes)
    documents: list = field(default_factory=list)  # (i, sha256)
    seal_votes: dict = field(default_factory=dict)  # sha256 -> orgs that asked to seal
    datasets: list = field(default_factory=list)  # (i, dataset id, owner)
    readers: dict = field(default_factory=dict)  # dataset id -> orgs holding a key


@dataclass
class Ctx:
    rng: random.Random
    i: int
    now: int
    lag: int
    flows: FlowState
    clients: list[ClientPlacement]
    by_org: dict[str, list[ClientPlacement]]
    apps: dict
    org_keys: dict[str, str]  # org -> X25519 public key (hex)

    def invalid(self) -> bool:
        """Whether to make this transaction deliberately wrong. Never the first: a run of
        one transaction (a lesson's first run) must show a valid one commit. The draw is
        made either way, so the rest of the workload stays as it was."""
        return self.rng.random() < INVALID and self.i > 0

    def client_of(self, orgs) -> ClientPlacement:
        """A client of one of ``orgs`` (any client if none of them has one: it will be refused)."""
        pool = [c for org in sorted(orgs) for c in self.by_org.get(org, ())]
        return self.rng.choice(pool or self.clients)

    def client_not_of(self, orgs) -> ClientPlacement:
        pool = [c for c in self.clients if c.org not in orgs]
        return self.rng.choice(pool or self.clients)

    def mature(self, items: list):
        """An item created at least ``lag`` transactions ago, or None."""
        ready = [x for x in items if x[0] <= self.i - self.lag]
        return self.rng.choice(ready) if ready else None

    def any_client(self) -> ClientPlacement:
        return self.clients[self.i % len(self.clients)]


Generator = Callable[[Ctx], tuple[ClientPlacement, str, dict]]  # -> (client, op, args)


# ---- records ------------------------------------------------------------------------------

def _record_key(i: int) -> str:
    return f"rec-{i:06d}"


def _records_put(ctx: Ctx):
    client = ctx.any_client()
    keys = ctx.flows.records.setdefault(client.org, array("q"))
    if keys and ctx.rng.random() < 0.3:
        key = _record_key(ctx.rng.choice(keys))  # update an existing record
    else:
        key = _record_key(ctx.i)
        keys.append(ctx.i)
    return client, "put", {"key": key, "value": f"{client.id} entry {ctx.i}"}


def _records_delete(ctx: Ctx):
    client = ctx.any_client()
    keys = ctx.flows.records.get(client.org)
    if not keys:
        return client, "delete", {"key": f"rec-missing-{ctx.i}"}  # refused: nothing to delete
    return client, "delete", {"key": _record_key(keys.pop(ctx.rng.randrange(len(keys))))}


# ---- licences -------------------------------------------------------------------------

def _licence_issue(ctx: Ctx):
    app = ctx.apps["licences"]
    kind = ctx.rng.choice(sorted(app.issuers))
    orgs = app.issuers[kind].orgs
    licence_id = f"LIC-{ctx.i:06d}"
    client = ctx.client_not_of(orgs) if ctx.invalid() else ctx.client_of(orgs)
    if client.org in orgs:
        ctx.flows.licences.append((ctx.i, licence_id, kind))
    return client, "issue", {"licence_id": licence_id, "type": kind, "holder": f"holder-{ctx.rng.randrange(10**6):06d}",
                    "valid_until": ctx.now + 365 * DAY_NS}


def _licence_change(op: str) -> Generator:
    def gen(ctx: Ctx):
        app = ctx.apps["licences"]
        picked = ctx.mature(ctx.flows.licences)
        if picked is None:
            return _licence_issue(ctx)
        if ctx.invalid():
            client = ctx.client_of(app.organisations())
            return client, op, {"licence_id": f"LIC-UNKNOWN-{ctx.i}", "valid_until": ctx.now + DAY_NS}
        _, licence_id, kind = picked
        policy = app.revokers.get(kind, app.issuers[kind]) if op == "revoke" else app.issuers[kind]
        args = {"licence_id": licence_id, "reason": f"{op} by workload"}
        if op == "renew":
            args["valid_until"] = ctx.now + (400 + ctx.i % 100) * DAY_NS
        return ctx.client_of(policy.orgs), op, args
    return gen


def _licence_verify(ctx: Ctx):
    picked = ctx.mature(ctx.flows.licences)
    if picked is None:
        return _licence_issue(ctx)
    licence_id = f"LIC-FORGED-{ctx.i}" if ctx.invalid() else picked[1]
    return ctx.any_client(), "verify", {"licence_id": licence_id}


# ---- provident fund ---------------------------------------------------------------------

def _fund_deposit(ctx: Ctx):
    app = ctx.apps["provident_fund"]
    citizen = f"CQ{ctx.rng.randrange(400):05d}"
    if not any(c == citizen for _, c in ctx.flows.accounts):
        ctx.flows.accounts.append((ctx.i, citizen))
    return ctx.client_of(app.depositors.orgs), "deposit", {
        "citizen": citizen, "amount_fen": ctx.rng.randrange(50_000, 400_000), "month": f"2026-{1 + ctx.i % 12:02d}"}


def _fund_grant(ctx: Ctx):
    app = ctx.apps["provident_fund"]
    picked = ctx.mature(ctx.flows.accounts)
    if picked is None:
        return _fund_deposit(ctx)
    citizen = picked[1]
    grantees = sorted(set(ctx.by_org) - app.centre.orgs - app.depositors.orgs) or sorted(ctx.by_org)
    org = ctx.rng.choice(grantees)
    # Most grants last a simulated day; some only half a second, so later queries find them expired.
    until = ctx.now + (SECOND_NS // 2 if ctx.rng.random() < 0.1 else DAY_NS)
    ctx.flows.grants.append((ctx.i, citizen, org, until))
    return ctx.client_of(app.centre.orgs), "grant", {"citizen": citizen, "org": org, "until": until,
                                            "purpose": "mortgage application"}


def _fund_query(ctx: Ctx):
    picked = ctx.mature([g for g in ctx.flows.grants if g[3] > ctx.now]) if not ctx.invalid() else None
    if picked is None:
        if not ctx.flows.grants:
            return _fund_grant(ctx)
        # A department without a grant (or with an expired one) tries: refused, and on the record.
        stale = ctx.rng.choice(ctx.flows.grants)
        return ctx.client_not_of({stale[2]}), "query", {"citizen": stale[1], "purpose": "curious"}
    _, citizen, org, _ = picked
    return ctx.client_of({org}), "query", {"citizen": citizen, "purpose": "loan check"}


def _fund_revoke(ctx: Ctx):
    app = ctx.apps["provident_fund"]
    picked = ctx.mature(ctx.flows.grants)
    if picked is None:
        return _fund_grant(ctx)
    ctx.flows.grants.remove(picked)
    return ctx.client_of(app.centre.orgs), "revoke", {"citizen": picked[1], "org": picked[2]}


# ---- traceability -------------------------------------------------------------------------

PRODUCTS = ("kiwifruit", "tea", "rice", "citrus", "pork", "sichuan-pepper", "chilli", "wheat", "garlic")
ORIGINS = ("Pujiang county farm", "Mengding mountain tea garden", "Hanyuan pepper cooperative",
           "Zhumadian grain base", "Xinyang tea plantation", "Cangxi kiwi orchard")


def _trace_register(ctx: Ctx):
    app = ctx.apps["traceability"]
    batch = f"B{ctx.i:06d}"
    client = ctx.client_of(app.producers.orgs)
    ctx.flows.batches.append((ctx.i, batch))
    ctx.flows.custody[batch] = client.org
    return client, "register", {"batch_id": batch, "product": ctx.rng.choice(PRODUCTS), "origin": ctx.rng.choice(ORIGINS),
                    "quantity_kg": ctx.rng.randrange(100, 20_000)}


def _trace_transfer(ctx: Ctx):
    picked = ctx.mature(ctx.flows.batches)
    if picked is None:
        return _trace_register(ctx)
    batch = picked[1]
    holder = ctx.flows.custody[batch]
    if ctx.invalid():
        return ctx.client_not_of({holder}), "transfer", {"batch_id": batch, "to": holder}  # refused: not the custodian
    to = ctx.rng.choice([o for o in sorted(ctx.by_org) if o != holder] or [holder])
    ctx.flows.custody[batch] = to
    return ctx.client_of({holder}), "transfer", {"batch_id": batch, "to": to}


def _trace_inspect(ctx: Ctx):
    app = ctx.apps["traceability"]
    picked = ctx.mature(ctx.flows.batches)
    if picked is None:
        return _trace_register(ctx)
    batch = picked[1]
    result = "fail" if ctx.rng.random() < 0.05 else "pass"
    return ctx.client_of(app.inspectors.orgs), "inspect", {"batch_id": batch, "result": result, "notes": "pesticide residue"}


def _trace_sell(ctx: Ctx):
    picked = ctx.mature(ctx.flows.batches)
    if picked is None:
        return _trace_register(ctx)
    ctx.flows.batches.remove(picked)
    return ctx.client_of({ctx.flows.custody[picked[1]]}), "sell", {"batch_id": picked[1]}


# ---- evidence -------------------------------------------------------------------------

def _doc_hash(i: int, tampered: bool = False) -> str:
    return hashlib.sha256(f"contract #{i}{' (altered)' if tampered else ''}".encode()).hexdigest()


def _evidence_anchor(ctx: Ctx):
    app = ctx.apps["evidence"]
    digest = _doc_hash(ctx.i)
    ctx.flows.documents.append((ctx.i, digest))
    return ctx.client_of(app.anchorers.orgs), "anchor", {"sha256": digest, "title": f"evidence file {ctx.i}",
                                               "case": f"(2026) Yu 01 Min Chu {ctx.i % 9000}"}


def _evidence_verify(ctx: Ctx):
    picked = ctx.mature(ctx.flows.documents)
    if picked is None:
        return _evidence_anchor(ctx)
    if ctx.invalid():  # someone altered the document: its hash was never anchored
        return ctx.any_client(), "verify", {"sha256": _doc_hash(picked[0], tampered=True)}
    return ctx.any_client(), "verify", {"sha256": picked[1]}


def _evidence_seal(ctx: Ctx):
    app = ctx.apps["evidence"]
    picked = ctx.mature(ctx.flows.documents)
    if picked is None:
        return _evidence_anchor(ctx)
    digest = picked[1]
    voted = ctx.flows.seal_votes.setdefault(digest, set())
    left = sorted(app.sealers.orgs - voted)
    if not left:
        ctx.flows.documents.remove(picked)
        return _evidence_anchor(ctx)
    org = ctx.rng.choice(left)
    voted.add(org)
    return ctx.client_of({org}), "seal", {"sha256": digest}


# ---- data sharing ---------------------------------------------------------------------

def _wrap_for(ctx: Ctx, data_key: bytes, org: str) -> str:
    ephemeral = _x25519(ctx)
    return wrap(data_key, ctx.org_keys[org], ephemeral, ctx.rng.randbytes(12))


def _x25519(ctx: Ctx) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(ctx.rng.randbytes(32))


def _data_register(ctx: Ctx):
    app = ctx.apps["data_sharing"]
    client = ctx.client_of(app.owners.orgs)
    data_key = ctx.rng.randbytes(32)
    blob = seal(f"dataset {ctx.i}: {ctx.rng.randbytes(48).hex()}".encode(), data_key, ctx.rng.randbytes(12))
    others = [o for o in sorted(ctx.org_keys) if o != client.org]
    readers = [client.org] + ctx.rng.sample(others, min(len(others), ctx.rng.randrange(1, 4)))
    dataset = f"DS-{ctx.i:06d}"
    ctx.flows.datasets.append((ctx.i, dataset, client.org))
    ctx.flows.readers[dataset] = set(readers)
    return client, "register", {"dataset_id": dataset, "digest": hashlib.sha256(blob).hexdigest(), "size": len(blob),
                    "keys": {org: _wrap_for(ctx, data_key, org) for org in readers}}


def _data_access(ctx: Ctx):
    picked = ctx.mature(ctx.flows.datasets)
    if picked is None:
        return _data_register(ctx)
    readers = ctx.flows.readers[picked[1]]
    client = ctx.client_not_of(readers) if ctx.invalid() else ctx.client_of(readers)
    return client, "access", {"dataset_id": picked[1]}


def _data_grant(ctx: Ctx):
    picked = ctx.mature(ctx.flows.datasets)
    if picked is None:
        return _data_register(ctx)
    _, dataset, owner = picked
    outsiders = [o for o in sorted(ctx.org_keys) if o not in ctx.flows.readers[dataset]]
    if not outsiders:
        return _data_access(ctx)
    org = ctx.rng.choice(outsiders)
    ctx.flows.readers[dataset].add(org)
    # The owner re-wraps the data key it keeps off chain; here a fresh key stands in for it.
    return ctx.client_of({owner}), "grant", {"dataset_id": dataset, "org": org,
                                    "wrapped_key": _wrap_for(ctx, ctx.rng.randbytes(32), org)}


def _data_revoke(ctx: Ctx):
    picked = ctx.mature(ctx.flows.datasets)
    if picked is None:
        return _data_register(ctx)
    _, dataset, owner = picked
    removable = sorted(ctx.flows.readers[dataset] - {owner})
    if not removable:
        return _data_grant(ctx)
    org = ctx.rng.choice(removable)
    ctx.flows.readers[dataset].discard(org)
    return ctx.client_of({owner}), "revoke", {"dataset_id": dataset, "org": org}


GENERATORS: dict[tuple[str, str], Generator] = {
    ("records", "put"): _records_put,
    ("records", "delete"): _records_delete,
    ("licences", "issue"): _licence_issue,
    ("licences", "renew"): _licence_change("renew"),
    ("licences", "suspend"): _licence_change("suspend"),
    ("licences", "reinstate"): _licence_change("reinstate"),
    ("licences", "revoke"): _licence_change("revoke"),
    ("licences", "verify"): _licence_verify,
    ("provident_fund", "deposit"): _fund_deposit,
    ("provident_fund", "grant"): _fund_grant,
    ("provident_fund", "query"): _fund_query,
    ("provident_fund", "revoke"): _fund_revoke,
    ("traceability", "register"): _trace_register,
    ("traceability", "transfer"): _trace_transfer,
    ("traceability", "inspect"): _trace_inspect,
    ("traceability", "sell"): _trace_sell,
    ("evidence", "anchor"): _evidence_anchor,
    ("evidence", "verify"): _evidence_verify,
    ("evidence", "seal"): _evidence_seal,
    ("data_sharing", "register"): _data_register,
    ("data_sharing", "grant"): _data_grant,
    ("data_sharing", "revoke"): _data_revoke,
    ("data_sharing", "access"): _data_access,
}


def submissions(spec: WorkloadSpec, clients: list[ClientPlacement], signers: dict[str, Signer],
                rng: random.Random, apps: dict, org_keys: dict[str, str], start: int = 0,
                epoch: int = 0) -> Iterator[Submission]:
    """Yield the run's submissions in time order, signing each as it is produced.
    ``epoch``: the calendar ns of time 0, so dates in the arguments (a licence's
    ``valid_until``) are calendar time, as block timestamps are."""
    mix = [(m.app, m.op) for m in spec.mix]
    weights = [m.weight for m in spec.mix]
    for app, op in mix:
        if (app, op) not in GENERATORS:
            raise ValueError(f"no workload generator for {app}.{op}")
    by_org: dict[str, list[ClientPlacement]] = {}
    for c in clients:
        by_org.setdefault(c.org, []).append(c)
    flows = FlowState()
    nonces: dict[str, int] = {}
    lag = max(20, int(spec.rate_tps * 0.25))  # about a quarter of a second of load
    t = float(start)
    for i in range(spec.transactions):
        t += rng.expovariate(spec.rate_tps) * 1e9
        at = int(t)
        app, op = mix[0] if len(mix) == 1 else rng.choices(mix, weights)[0]
        ctx = Ctx(rng, i, epoch + at, lag, flows, clients, by_org, apps, org_keys)
        # A generator may fall back to the op that creates what it needs (no batch to
        # transfer yet: register one), so it says which op it built.
        client, built_op, args = GENERATORS[(app, op)](ctx)
        nonces[client.id] = nonces.get(client.id, 0) + 1
        request = Request(nonce=nonces[client.id], app=app, op=built_op, args=args, ts=at)
        yield Submission(at, client, signers[client.id].sign(request))
