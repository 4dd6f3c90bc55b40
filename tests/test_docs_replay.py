"""A replay written from docs/ledger.md and docs/apps.md alone, as an outsider would write it.

It imports nothing of the project's (a test below checks): it runs the `citychain`
command to export a city chain, then recomputes, from the files and the docs, the
genesis hash, every block hash and transaction root, every state root and every
receipt of one node's ledger. If the code and the docs drift apart, this fails.
"""

from __future__ import annotations

import ast
import base64
import binascii
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

# -- docs/ledger.md ---------------------------------------------------------------------


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def merkle(leaves: list[bytes]) -> bytes:
    """RFC 6962: leaf SHA-256(0x00 ‖ leaf), interior SHA-256(0x01 ‖ left ‖ right)."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return sha256(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha256(b"\x01" + merkle(leaves[:k]) + merkle(leaves[k:]))


def state_root(state: dict[str, object]) -> str:
    """256 buckets by the first byte of SHA-256(key); a bucket's digest is SHA-256 of the
    canonical object of key -> canonical JSON text of the value; RFC 6962 over the digests."""
    buckets: list[dict[str, str]] = [{} for _ in range(256)]
    for key, value in state.items():
        buckets[sha256(key.encode("utf-8"))[0]][key] = canonical(value).decode("ascii")
    return merkle([sha256(canonical(b)) for b in buckets]).hex()


# -- docs/apps.md: arguments and policies -------------------------------------------------

class Refused(Exception):
    pass


def need_str(args, name, n):
    v = args.get(name)
    if not isinstance(v, str) or not 0 < len(v) <= n:
        raise Refused(f"{name} must be a string of 1..{n} characters")
    return v


def need_int(args, name):
    v = args.get(name)
    if type(v) is not int or v < 0:
        raise Refused(f"{name} must be a non-negative integer")
    return v


def free_text(args, name, n):
    v = args.get(name)
    return v[:n] if isinstance(v, str) else ""


HEX = set("0123456789abcdef")


class Policy:
    def __init__(self, text: str):
        m = re.match(r"^\s*(any|all|[0-9]+)\s+of\s+\[([^\]]*)\]\s*$", text)
        self.text = text.strip()
        self.orgs = {o.strip() for o in m.group(2).split(",") if o.strip()}
        kind = m.group(1)
        self.threshold = 1 if kind == "any" else len(self.orgs) if kind == "all" else int(kind)

    def check(self, ctx, what):
        if ctx.org not in self.orgs:
            raise Refused(f"{ctx.org} may not {what}: policy is {self.text}")

    def approve(self, ctx, action, what) -> bool:
        self.check(ctx, what)
        if self.threshold == 1:
            return True
        key = f"approvals/{action}"
        pending = ctx.get(key) or {"orgs": [], "first_height": ctx.height}
        if ctx.org in pending["orgs"]:
            raise Refused(f"{ctx.org} already approved {what}")
        pending["orgs"] = sorted(pending["orgs"] + [ctx.org])
        if len(pending["orgs"]) >= self.threshold:
            ctx.delete(key)
            return True
        ctx.put(key, pending)
        return False


class Ctx:
    """One transaction's view of its app's namespace; writes kept apart until it succeeds."""

    ABSENT = object()

    def __init__(self, app, state, block_writes, org, client, height, at, args):
        self.app, self.state, self.block_writes = app, state, block_writes
        self.org, self.client, self.height, self.at, self.args = org, client, height, at, args
        self.writes: dict = {}

    def get(self, key):
        full = f"{self.app}/{key}"
        for layer in (self.writes, self.block_writes):
            if full in layer:
                v = layer[full]
                return None if v is self.ABSENT else json.loads(json.dumps(v))
        v = self.state.get(full)
        return None if v is None else json.loads(json.dumps(v))

    def put(self, key, value):
        self.writes[f"{self.app}/{key}"] = json.loads(json.dumps(value))

    def delete(self, key):
        self.writes[f"{self.app}/{key}"] = self.ABSENT


# -- docs/apps.md: the apps ---------------------------------------------------------------

def records(c, op, settings):
    key = c.args.get("key")
    if not isinstance(key, str) or not 0 < len(key) <= 128:
        raise Refused("key must be a string of 1..128 characters")
    k = f"{c.org}/{key}"
    current = c.get(k)
    if op == "put":
        value = c.args.get("value")
        if not isinstance(value, str) or len(value) > 4096:
            raise Refused("value must be a string of at most 4096 characters")
        version = 1 if current is None else current["version"] + 1
        c.put(k, {"value": value, "version": version, "author": c.client, "height": c.height})
        return {"version": version}
    if current is None:
        raise Refused(f"no record '{key}' for {c.org}")
    c.delete(k)
    return None


def licences(c, op, settings):
    issuers = {t: Policy(p) for t, p in (settings.get("issuers") or {}).items()} or \
        {"business": Policy("any of [market-regulation]")}
    revokers = {t: Policy(p) for t, p in (settings.get("revokers") or {}).items()}
    licence_id = need_str(c.args, "licence_id", 64)
    k = f"licence/{licence_id}"
    lic = c.get(k)

    def log(what, with_reason=True):
        entry = {"op": what, "org": c.org, "by": c.client, "height": c.height, "at": c.at}
        if with_reason and isinstance(c.args.get("reason"), str):
            entry["reason"] = c.args["reason"][:256]
        lic["history"].append(entry)

    if op == "issue":
        kind = need_str(c.args, "type", 32)
        if kind not in issuers:
            types = ", ".join(f"'{t}'" for t in sorted(issuers))
            raise Refused(f"unknown licence type '{kind}'; types are [{types}]")
        issuers[kind].check(c, f"issue a {kind} licence")
        if lic is not None:
            raise Refused(f"licence {licence_id} already exists")
        until = need_int(c.args, "valid_until")
        if until <= c.at:
            raise Refused("valid_until must be in the future")
        holder = need_str(c.args, "holder", 128)
        lic = {"id": licence_id, "type": kind, "holder": holder, "issuer": c.org, "status": "active",
               "valid_until": until, "history": []}
        log("issue", with_reason=False)
        c.put(k, lic)
        return {"status": "active"}
    if lic is None:
        raise Refused(f"unknown licence {licence_id}")
    issuer = issuers[lic["type"]]
    kind = lic["type"]
    if op == "verify":
        return {"status": lic["status"], "valid": lic["status"] == "active" and c.at < lic["valid_until"],
                "holder": lic["holder"]}
    if lic["status"] == "revoked":
        raise Refused(f"licence {licence_id} is revoked")
    if op == "renew":
        issuer.check(c, f"renew a {kind} licence")
        until = need_int(c.args, "valid_until")
        if until <= lic["valid_until"]:
            raise Refused("a renewal must extend valid_until")
        lic["valid_until"] = until
    elif op == "suspend":
        issuer.check(c, f"suspend a {kind} licence")
        if lic["status"] != "active":
            raise Refused(f"licence {licence_id} is {lic['status']}, not active")
        lic["status"] = "suspended"
    elif op == "reinstate":
        issuer.check(c, f"reinstate a {kind} licence")
        if lic["status"] != "suspended":
            raise Refused(f"licence {licence_id} is {lic['status']}, not suspended")
        lic["status"] = "active"
    elif op == "revoke":
        if not revokers.get(kind, issuer).approve(c, f"revoke/{licence_id}", f"revoke a {kind} licence"):
            log("revoke-approved", with_reason=False)
            c.put(k, lic)
            return {"status": lic["status"], "pending": True}
        lic["status"] = "revoked"
    log(op)
    c.put(k, lic)
    return {"status": lic["status"]}


def provident_fund(c, op, settings):
    centre = Policy(settings.get("centre", "any of [housing-fund-centre]"))
    depositors = Policy(settings.get("depositors", "any of [housing-fund-centre]"))
    citizen = need_str(c.args, "citizen", 32)
    account_key = f"account/{citizen}"
    if op == "deposit":
        depositors.check(c, "record deposits")
        amount = need_int(c.args, "amount_fen")
        month = need_str(c.args, "month", 7)
        if amount == 0:
            raise Refused("a deposit must be positive")
        acc = c.get(account_key) or {"citizen": citizen, "balance_fen": 0, "deposits": 0, "employers": []}
        acc["balance_fen"] += amount
        acc["deposits"] += 1
        acc["last_month"] = month
        if c.org not in acc["employers"]:
            acc["employers"] = sorted(acc["employers"] + [c.org])
        c.put(account_key, acc)
        return {"balance_fen": acc["balance_fen"]}
    if op == "grant":
        centre.check(c, "grant access to fund records")
        grantee = need_str(c.args, "org", 48)
        until = need_int(c.args, "until")
        if until <= c.at:
            raise Refused("a grant must expire in the future")
        if c.get(account_key) is None:
            raise Refused(f"no fund account for {citizen}")
        c.put(f"grant/{citizen}/{grantee}", {"until": until, "purpose": free_text(c.args, "purpose", 64),
                                             "by": c.client, "height": c.height})
        return {"until": until}
    if op == "revoke":
        centre.check(c, "revoke access to fund records")
        grantee = need_str(c.args, "org", 48)
        if c.get(f"grant/{citizen}/{grantee}") is None:
            raise Refused(f"{grantee} holds no grant for {citizen}")
        c.delete(f"grant/{citizen}/{grantee}")
        return None
    grant = c.get(f"grant/{citizen}/{c.org}")
    if grant is None:
        raise Refused(f"{c.org} holds no grant for {citizen}")
    if grant["until"] <= c.at:
        raise Refused(f"{c.org}'s grant for {citizen} expired")
    trail = c.get(f"access/{citizen}") or []
    trail.append({"org": c.org, "by": c.client, "height": c.height, "at": c.at,
                  "purpose": free_text(c.args, "purpose", 64)})
    c.put(f"access/{citizen}", trail)
    acc = c.get(account_key)
    return {"balance_fen": acc["balance_fen"], "deposits": acc["deposits"]}


def traceability(c, op, settings):
    producers = Policy(settings.get("producers", "any of [agriculture]"))
    inspectors = Policy(settings.get("inspectors", "any of [market-regulation]"))
    batch_id = need_str(c.args, "batch_id", 64)
    k = f"batch/{batch_id}"
    batch = c.get(k)

    def event(what, **extra):
        batch["history"].append({"event": what, "org": c.org, "height": c.height, "at": c.at, **extra})

    if op == "register":
        producers.check(c, "register batches")
        if batch is not None:
            raise Refused(f"batch {batch_id} is already registered")
        product = need_str(c.args, "product", 64)
        origin = need_str(c.args, "origin", 128)
        quantity = need_int(c.args, "quantity_kg")
        batch = {"id": batch_id, "product": product, "origin": origin, "quantity_kg": quantity,
                 "custodian": c.org, "status": "in-supply-chain", "inspections": 0, "history": []}
        event("registered", origin=origin)
    else:
        if batch is None:
            raise Refused(f"unknown batch {batch_id}")
        if batch["status"] == "sold":
            raise Refused(f"batch {batch_id} was sold")
        if op == "transfer":
            if c.org != batch["custodian"]:
                raise Refused(f"{c.org} does not hold batch {batch_id} ({batch['custodian']} does)")
            to = need_str(c.args, "to", 48)
            if to == c.org:
                raise Refused("a transfer needs another organisation")
            batch["custodian"] = to
            event("transferred", to=to)
        elif op == "inspect":
            inspectors.check(c, "inspect batches")
            result = c.args.get("result")
            if result not in ("pass", "fail"):
                raise Refused("result must be one of ('pass', 'fail')")
            batch["inspections"] += 1
            if result == "fail":
                batch["status"] = "recalled"
            event(f"inspected: {result}", notes=free_text(c.args, "notes", 128))
        else:
            if c.org != batch["custodian"]:
                raise Refused(f"{c.org} does not hold batch {batch_id}")
            if batch["status"] == "recalled":
                raise Refused(f"batch {batch_id} failed inspection and is recalled")
            batch["status"] = "sold"
            event("sold")
    c.put(k, batch)
    return {"custodian": batch["custodian"], "status": batch["status"]}


def evidence(c, op, settings):
    anchorers = Policy(settings.get("anchorers", "any of [court, notary, police]"))
    sealers = Policy(settings.get("sealers", "2 of [court, notary, police]"))
    digest = need_str(c.args, "sha256", 64)
    if len(digest) != 64 or not HEX.issuperset(digest):
        raise Refused("sha256 must be 64 lower-case hex characters")
    k = f"doc/{digest}"
    doc = c.get(k)
    if op == "anchor":
        anchorers.check(c, "anchor evidence")
        if doc is not None:
            raise Refused(f"document already anchored at height {doc['height']}")
        seq = (c.get("count") or 0) + 1
        c.put("count", seq)
        doc = {"sha256": digest, "title": need_str(c.args, "title", 128), "case": free_text(c.args, "case", 64),
               "org": c.org, "by": c.client, "height": c.height, "at": c.at, "seq": seq, "sealed": False}
        c.put(k, doc)
        return {"seq": seq, "height": c.height}
    if doc is None:
        raise Refused("document not anchored: no record of this SHA-256 (altered, or never anchored)")
    if op == "verify":
        return {"anchored_at": doc["at"], "height": doc["height"], "seq": doc["seq"], "org": doc["org"],
                "sealed": doc["sealed"]}
    if doc["sealed"]:
        raise Refused("document is already sealed")
    if sealers.approve(c, f"seal/{digest}", "seal evidence"):
        doc["sealed"] = True
        doc["sealed_at"] = c.height
        c.put(k, doc)
        return {"sealed": True}
    return {"sealed": False, "pending": True}


def data_sharing(c, op, settings):
    owners = Policy(settings.get("owners", "any of [big-data]"))

    def wrapped(org, value):
        try:
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 92:
            raise Refused(f"the key wrapped for {org} is not 92 bytes of base64")
        return value

    dataset_id = need_str(c.args, "dataset_id", 64)
    k = f"dataset/{dataset_id}"
    ds = c.get(k)
    if op == "register":
        owners.check(c, "register datasets")
        if ds is not None and ds["owner"] != c.org:
            raise Refused(f"dataset {dataset_id} belongs to {ds['owner']}")
        digest = need_str(c.args, "digest", 64)
        if len(digest) != 64 or not HEX.issuperset(digest):
            raise Refused("digest must be the ciphertext's SHA-256, 64 hex characters")
        keys = c.args.get("keys")
        if not isinstance(keys, dict) or c.org not in keys:
            raise Refused("keys must map each authorised organisation, the owner included, to its wrapped key")
        keys = {org: wrapped(org, v) for org, v in keys.items()}
        version = 1 if ds is None else ds["version"] + 1
        ds = {"id": dataset_id, "owner": c.org, "digest": digest, "version": version,
              "size": need_int(c.args, "size"), "keys": keys, "height": c.height}
        c.put(k, ds)
        return {"version": version, "readers": sorted(keys)}
    if ds is None:
        raise Refused(f"unknown dataset {dataset_id}")
    if op == "access":
        if c.org not in ds["keys"]:
            raise Refused(f"{c.org} is not authorised to read dataset {dataset_id}")
        log = c.get(f"access/{dataset_id}") or []
        log.append({"org": c.org, "by": c.client, "height": c.height, "at": c.at, "version": ds["version"]})
        c.put(f"access/{dataset_id}", log)
        return {"wrapped_key": ds["keys"][c.org], "digest": ds["digest"], "version": ds["version"]}
    if c.org != ds["owner"]:
        raise Refused(f"only the owner {ds['owner']} may change who reads dataset {dataset_id}")
    other = need_str(c.args, "org", 48)
    if op == "grant":
        ds["keys"][other] = wrapped(other, c.args.get("wrapped_key"))
    else:
        if other == ds["owner"] or other not in ds["keys"]:
            raise Refused(f"{other} holds no key to revoke")
        del ds["keys"][other]
    c.put(k, ds)
    return {"readers": sorted(ds["keys"])}


APPS = {"records": (records, ("put", "delete")),
        "licences": (licences, ("issue", "renew", "suspend", "reinstate", "revoke", "verify")),
        "provident_fund": (provident_fund, ("deposit", "grant", "revoke", "query")),
        "traceability": (traceability, ("register", "transfer", "inspect", "sell")),
        "evidence": (evidence, ("anchor", "verify", "seal")),
        "data_sharing": (data_sharing, ("register", "grant", "revoke", "access"))}


def execute(block: dict, state: dict, orgs: dict[str, str], settings: dict) -> list[dict]:
    """docs/apps.md, "Executing a block": the receipts; ``state`` ends as after the block."""
    header = block["header"]
    block_writes: dict = {}
    receipts = []
    for tx in block["txs"]:
        data = json.loads(tx["data"])
        tx_id = hashlib.sha256(tx["data"].encode("ascii")).hexdigest()
        app, op = data["app"], data["op"]
        if app not in APPS:
            receipts.append({"tx": tx_id, "ok": False, "reason": f"unknown-app: {app}"})
            continue
        run, ops = APPS[app]
        if op not in ops:
            receipts.append({"tx": tx_id, "ok": False, "reason": f"unknown-op: {app}.{op}"})
            continue
        ctx = Ctx(app, state, block_writes, orgs[data["signer"]], data["signer"], header["height"],
                  header["timestamp"], data["args"])
        try:
            result = run(ctx, op, settings.get(app) or {})
        except Refused as refusal:
            receipts.append({"tx": tx_id, "ok": False, "reason": str(refusal)})
            continue
        block_writes.update(ctx.writes)
        receipt = {"tx": tx_id, "ok": True}
        if result is not None:
            receipt["result"] = result
        receipts.append(receipt)
    for key, value in block_writes.items():
        if value is Ctx.ABSENT:
            state.pop(key, None)
        else:
            state[key] = value
    return receipts


# -- the check ------------------------------------------------------------------------------

CITIES = ["chongqing", "guiyang", "henan", "sichuan", "taihu", "zhejiang"]


@pytest.mark.parametrize("city", CITIES)
def test_a_replay_from_the_docs_recomputes_every_state_root_and_receipt(city, tmp_path):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "citychain.cli", "run", city, "--nodes", "4", "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    raw_genesis = (out / "genesis" / "genesis.json").read_bytes()
    genesis = json.loads(raw_genesis)
    assert canonical(genesis) == raw_genesis  # the file is canonical JSON, nothing else
    orgs = {c["id"]: c["org"] for c in genesis["clients"]}
    state: dict = {}
    assert genesis["state_root"] == state_root(state)
    prev = hashlib.sha256(raw_genesis).hexdigest()  # the genesis hash: over the file's exact bytes
    lines = (out / "ledgers" / "node-00.jsonl").read_bytes().split(b"\n")
    assert lines.pop() == b""  # every line ends with a newline
    refused = succeeded = 0
    for height, text in enumerate(lines, 1):
        block = json.loads(text)
        assert canonical(block) == text
        header = block["header"]
        assert header["height"] == height and header["prev_hash"] == prev
        assert block["hash"] == hashlib.sha256(canonical(header)).hexdigest()
        assert header["tx_root"] == merkle([t["data"].encode("ascii") for t in block["txs"]]).hex()
        assert header["state_root"] == state_root(state), f"block {height}"
        receipts = execute(block, state, orgs, genesis["apps"])
        for mine, theirs in zip(receipts, block["receipts"], strict=True):
            assert canonical(mine) == canonical(theirs), f"block {height}"
        refused += sum(not r["ok"] for r in receipts)
        succeeded += sum(r["ok"] for r in receipts)
        prev = block["hash"]
    assert len(lines) > 5 and refused > 0 and succeeded > 10 * refused  # it exercised both paths


def test_this_replay_imports_nothing_of_the_project():
    tree = ast.parse(Path(__file__).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not names & {"citychain", "consensus", "node", "apps", "tests"}, names
