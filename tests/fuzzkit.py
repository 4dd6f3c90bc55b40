"""Hostile inputs for the network decoder and the replica behind it (issue 12).

Shared by the property tests (tests/node/test_fuzz_decoder.py, driven by Hypothesis)
and the long run (benchmarks/fuzz_decoder.py, driven by a seeded generator): a small
chain built by the simulator, one valid encoding of every message kind signed with the
chain's real member keys, and the mutations applied to them.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

from citychain.scenario import load_scenario
from citychain.sim.run import SimRun, build
from consensus.block import Block, BlockHeader, tx_root
from consensus.encoding import canonical
from consensus.messages import (BlockReply, BlockRequest, Checkpoint, Commit, NewView, NewViewRequest, PrePrepare,
                                Prepare, PreparedProof, Request, ViewChange)
from node.codec import MAX_BLOCK_REQUESTS, MAX_LIST_ITEMS, MAX_MESSAGE_BYTES, encode
from node.signing import Signer
from node.sync_messages import Blocks, Fetch

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "messages.md"
NOW = 10**9  # a node's clock when it is fed fuzz outside a running simulation


def documented_reasons() -> set[str]:
    """Every drop reason docs/messages.md names (its table of reasons)."""
    text = DOCS.read_text()
    section = text[text.index("## Why a message is dropped"):text.index("## View changes")]
    return {r for line in section.splitlines() if line.startswith("| `")
            for r in re.findall(r"`([a-z][a-z-]*)", line.split("|")[1])}


def small_scenario(nodes: int = 4, transactions: int = 60, seed: int = 7):
    scenario = load_scenario(ROOT / "citychain" / "scenarios" / "taihu.yaml")
    data = scenario.model_dump()
    data["nodes"] = nodes
    data["seed"] = seed
    data["workload"]["transactions"] = transactions
    return type(scenario).model_validate(data)


class Kit:
    """A built (not run) chain, its signers, and a valid envelope of every kind."""

    def __init__(self, run: SimRun | None = None):
        self.run = run or build(small_scenario())
        genesis = self.run.genesis
        self.chain = genesis.chain_id
        self.replicas = list(genesis.replicas)
        self.keys = {i: ident.key for i, ident in genesis.identities.items()}
        self.signers = {i: Signer(i, key, self.chain) for i, key in self.keys.items()}
        self.client = next(c.id for c in genesis.clients)
        self.valid = self._valid_envelopes()
        self.encoded = [encode(env) for env in self.valid]

    def sign(self, ident: str, message):
        return self.signers[ident].sign(message)

    def _valid_envelopes(self) -> list:
        r0, r1, r2, r3 = self.replicas[:4]
        node = self.run.nodes[r1]
        head, root = node.ledger.head_hash, node.executor.state.root()
        req = self.sign(self.client, Request(1, "records", "put", {"key": "k", "value": "v"}, 5))
        # Dated on the calendar (blocks are judged at their date: a block of 1970 is refused
        # before the replica sees it, and so would every mutation of it), 10 ns after the
        # simulator's epoch: inside the date window of a node fed at NOW.
        header = BlockHeader(self.chain, 1, head, tx_root((req,)), root, 0, r0, self.run.membership.epoch_ns + 10)
        block = Block.create(header, (req,))
        pre = self.sign(r0, PrePrepare(0, 1, block.hash, block))
        prepares = tuple(self.sign(r, Prepare(0, 1, block.hash)) for r in (r1, r2, r3))
        commits = tuple(self.sign(r, Commit(0, 1, block.hash)) for r in (r0, r1, r2))
        checkpoints = tuple(self.sign(r, Checkpoint(10, block.hash, root)) for r in (r0, r1, r2))
        vcs = tuple(self.sign(r, ViewChange(1, 0, (), (PreparedProof(pre, prepares),))) for r in (r1, r2, r3))
        pre1 = self.sign(r1, PrePrepare(1, 1, block.hash, block))
        return [
            req, pre, prepares[0], commits[0], checkpoints[0],
            self.sign(r2, ViewChange(1, 10, checkpoints, ())),
            vcs[0],
            self.sign(r1, NewView(1, vcs, (pre1,))),
            self.sign(r2, NewViewRequest(1)),
            self.sign(r2, Fetch(1, 5)),
            self.sign(r2, Blocks(((block, commits),))),
            self.sign(r2, BlockRequest(1, block.hash)),
            self.sign(r3, BlockReply(block.hash, block)),
        ]


# ---- mutations ----------------------------------------------------------------------

# Values of every JSON type, and the extremes: what a field must refuse unless it is its type.
NASTY = [None, True, False, 0, -1, 1, 2**63, 2**64 + 1, -(2**70), 1.5, -0.0, 1e308, "", "x", "0" * 64, "AB" * 32,
         "é" * 70, "x" * 5000, [], [1], ["ab" * 32], {}, {"a": 1}, [[[[]]]], {"": None}]


def _paths(obj, prefix=()):
    """Every (path, value) in a JSON tree."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _replace(obj, path, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, dict):
        out = dict(obj)
        out[head] = _replace(obj[head], rest, value)
        return out
    out = list(obj)
    out[head] = _replace(obj[head], rest, value)
    return out


def _delete(obj, path):
    head, rest = path[0], path[1:]
    if not rest:
        if isinstance(obj, dict):
            return {k: v for k, v in obj.items() if k != head}
        return obj[:head] + obj[head + 1:]
    return _replace(obj, (head,), _delete(obj[head], rest))


def mutate_tree(obj, rng: random.Random):
    """One structural change: a value replaced (by any JSON type or an extreme), a field
    deleted or added, or a list made long."""
    paths = [p for p, _ in _paths(obj)]
    path = rng.choice(paths)
    choice = rng.random()
    if choice < 0.6 or not path:
        return _replace(obj, path, rng.choice(NASTY))
    if choice < 0.75:
        return _delete(obj, path)
    target = obj
    for step in path[:-1]:
        target = target[step]
    if isinstance(target, dict):
        return _replace(obj, path[:-1], {**target, "extra": rng.choice(NASTY)})
    return _replace(obj, path[:-1], target * rng.choice([2, 50]))


def resign(kit: Kit, env_obj: dict, body, signer: str | None = None) -> bytes:
    """``env_obj`` with ``body`` as its signed data, validly signed by a real member:
    a valid signature over nonsense."""
    try:
        data = canonical(body)
    except (ValueError, TypeError):
        data = json.dumps(body, sort_keys=True, default=str).encode("ascii", "replace")
    ident = signer or (body.get("signer") if isinstance(body, dict) else None)
    if not isinstance(ident, str) or ident not in kit.keys:
        ident = kit.replicas[2]
    sig = kit.keys[ident].sign(data)
    out = dict(env_obj, data=data.decode("ascii", "replace"), sig=sig.hex())
    return canonical_or_dumps(out)


def canonical_or_dumps(obj) -> bytes:
    try:
        return canonical(obj)
    except (ValueError, TypeError):
        return json.dumps(obj).encode()


def byte_mutation(raw: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:  # truncated
        return raw[:rng.randrange(len(raw))]
    b = bytearray(raw)
    if kind == 1:  # bytes flipped
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == 2:  # a byte inserted
        b.insert(rng.randrange(len(b) + 1), rng.choice(b'{}[]",:0123456789\\ae-.'))
    elif kind == 3:  # a span deleted
        i = rng.randrange(len(b))
        del b[i:i + rng.randint(1, 16)]
    else:  # a span duplicated
        i = rng.randrange(len(b))
        j = min(len(b), i + rng.randint(1, 64))
        b[i:i] = b[i:j]
    return bytes(b)


def huge(kit: Kit, rng: random.Random) -> bytes:
    """Huge lengths and counts: oversized bytes, a block over the limits, long lists, deep nesting."""
    kind = rng.randrange(6)
    pre = json.loads(kit.encoded[1])
    if kind == 0:
        return b" " * (MAX_MESSAGE_BYTES + 1)
    if kind == 1:  # too many requests in a block
        pre["block"]["txs"] = [{"data": "", "sig": ""}] * (MAX_BLOCK_REQUESTS + 1)
        return json.dumps(pre).encode()
    if kind == 2:  # one request far over the block's byte limit
        pre["block"]["txs"] = [{"data": "x" * (16 * 1024 * 1024 + 1), "sig": "00" * 64}]
        return json.dumps(pre).encode()
    if kind == 3:  # too many attached envelopes
        vc = json.loads(kit.encoded[6])
        vc["envelopes"] = [0] * (MAX_LIST_ITEMS + 1)
        return json.dumps(vc).encode()
    if kind == 4:  # a signed body with a huge list of digests
        env = json.loads(kit.encoded[7])
        body = json.loads(env["data"])
        body["view_changes"] = ["ab" * 32] * (MAX_LIST_ITEMS + 1)
        return resign(kit, env, body)
    depth = rng.choice([100, 10_000, 100_000])
    return b"[" * depth + b"]" * depth


FAMILIES = ("random-bytes", "byte-mutation", "envelope-tree", "signed-nonsense", "header-types", "huge")
WEIGHTS = (10, 30, 25, 25, 9, 1)  # huge inputs cost milliseconds each: a few of them go a long way


def hostile(kit: Kit, rng: random.Random, family: str | None = None, weights=WEIGHTS) -> tuple[str, bytes]:
    """(family, bytes): one hostile input of ``family`` (by default one drawn by ``weights``)."""
    family = family or rng.choices(FAMILIES, weights)[0]
    raw = rng.choice(kit.encoded)
    if family == "random-bytes":
        return family, rng.randbytes(rng.randrange(300))
    if family == "byte-mutation":
        return family, byte_mutation(raw, rng)
    if family == "huge":
        return family, huge(kit, rng)
    obj = json.loads(raw)
    if family == "envelope-tree":  # the unsigned outer object, attachments included
        return family, canonical_or_dumps(mutate_tree(obj, rng))
    if family == "header-types":  # a block header field of the wrong type, the block's hash kept
        pre = json.loads(kit.encoded[1])
        field = rng.choice(sorted(pre["block"]["header"]))
        pre["block"]["header"][field] = rng.choice(NASTY + [float(pre["block"]["header"].get("height", 1))])
        return family, canonical_or_dumps(pre)
    body = json.loads(obj["data"])  # signed nonsense: the body changed, then validly signed
    return family, resign(kit, obj, mutate_tree(body, rng))


def feed(node, raw: bytes, now: int = NOW) -> str | None:
    """Hand ``raw`` to ``node``'s receive entry point; the reason it was refused, if it
    was (None: decoded and handed on, where the replica may count a drop of its own)."""
    before = Counter(node.metrics.drops.get(node.id, {}))
    node.on_wire(raw, now)
    after = Counter(node.metrics.drops.get(node.id, {}))
    new = after - before
    return next(iter(new)) if new else None


def run_fuzzed_chain(seed: int = 7, per_delivery: int = 1, transactions: int = 60) -> tuple[dict[str, int], int]:
    """Simulate a 4-node chain in which, before every message delivered to one node,
    ``per_delivery`` hostile inputs reach that node's ``on_wire`` (no huge ones: they
    cost time, not coverage, here). Returns every node's height and the inputs fed;
    raises if a transaction went unanswered."""
    import citychain.sim.run as simrun
    from citychain.summary import summarize

    original = simrun.build
    rng = random.Random(seed)
    fed = [0]
    no_huge = WEIGHTS[:-1] + (0,)

    def fuzzed_build(scenario, record=False):
        run = original(scenario, record)
        kit = Kit(run)
        target = kit.replicas[1]
        node, honest = run.nodes[target], run.network.handlers[target]

        def on_message(env, now, link=None):
            for _ in range(per_delivery):
                node.on_wire(hostile(kit, rng, weights=no_huge)[1], now)
                fed[0] += 1
            honest(env, now, link)

        run.network.handlers[target] = on_message
        return run

    simrun.build = fuzzed_build
    try:
        run = simrun.simulate(small_scenario(transactions=transactions, seed=seed))
    finally:
        simrun.build = original
    summary = summarize(run, "fuzzed")
    if not (summary["agreement"] and summary["safety_violations"] == 0
            and summary["committed_tx"] >= summary["submitted_tx"] == transactions):
        raise AssertionError(f"the fuzzed chain did not commit everything: {summary}")
    return {n: node.ledger.height for n, node in run.nodes.items() if n in run.genesis.replicas}, fed[0]
