"""Executing committed blocks: run each transaction's app over the world state.

A transaction either succeeds and its writes land, or fails with a recorded reason
and changes nothing. The outcome is a pure function of (state, block), which is what
lets the simulator compute it once for every node that holds the same state.
"""

from __future__ import annotations

import itertools

import json
from dataclasses import dataclass

from apps.base import Rejected, Tx
from consensus.block import Block
from consensus.encoding import canonical, check_canonical_value

from .codec import MalformedMessage
from .state import WorldState, bucket_of


@dataclass(frozen=True, slots=True)
class Receipt:
    tx: str
    ok: bool
    reason: str = ""
    result: dict | None = None

    def to_dict(self) -> dict:
        out: dict = {"tx": self.tx, "ok": self.ok}
        if self.reason:
            out["reason"] = self.reason
        if self.result is not None:
            out["result"] = self.result
        return out


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    receipts: tuple[Receipt, ...]
    writes: tuple[tuple[str, str | None], ...]
    state_root: str
    buckets: tuple[int, ...] = ()  # each write's state bucket, so other nodes need not hash the keys


class _TxView:
    """One transaction's view of one app's namespace: reads see earlier writes, writes are buffered."""

    __slots__ = ("prefix", "state", "block_writes", "writes")

    def __init__(self, prefix: str, state: WorldState, block_writes: dict[str, str | None]):
        self.prefix = prefix
        self.state = state
        self.block_writes = block_writes
        self.writes: dict[str, str | None] = {}

    def get(self, key: str, default=None):
        full = self.prefix + key
        for layer in (self.writes, self.block_writes):
            if full in layer:
                text = layer[full]
                return default if text is None else json.loads(text)
        value = self.state.get(full)
        return default if value is None else value

    def put(self, key: str, value) -> None:
        check_canonical_value(value, key)
        self.writes[self.prefix + key] = canonical(value).decode("ascii")

    def delete(self, key: str) -> None:
        self.writes[self.prefix + key] = None


def receipts_from(items: list) -> tuple[Receipt, ...]:
    """Receipts from their JSON objects (``Receipt.to_dict``), or MalformedMessage."""
    try:
        return tuple(Receipt(r["tx"], r["ok"], r.get("reason", ""), r.get("result")) for r in items)
    except (TypeError, KeyError, AttributeError) as exc:
        raise MalformedMessage("malformed", f"receipt: {exc!r}") from None


class OutcomeMemo(dict):
    """The simulator's shared memo, bounded: above ``2 × limit`` outcomes its oldest
    ``limit`` are forgotten. Nodes execute a block close together in time, so only a
    node far behind (crashed, cut off) meets a forgotten one, and executes it again to
    the same outcome (it is a pure function of the state and the block)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        if len(self) > 2 * self.limit:
            for old in list(itertools.islice(self, self.limit)):
                del self[old]


class Executor:
    """Runs blocks over ``state``. With ``memo`` (the simulator: one dict shared by every
    node), an outcome is computed once per (state root, block); with ``states`` too (a
    shared ``WeakValueDictionary``), the state after it is one object as well: states
    are then never changed in place but succeeded (``WorldState.successor``), and nodes
    holding the same state share it instead of holding a copy each."""

    def __init__(self, apps: dict, directory: dict[str, tuple[str, str]], state: WorldState,
                 memo: dict | None = None, states=None):
        self.apps = apps  # name -> app instance
        self.directory = directory  # client id -> (org, role)
        self.state = state
        self.memo = memo
        self.states = states if memo is not None else None

    def execute(self, block: Block) -> BlockOutcome:
        key = (self.state.root(), block.hash)
        if self.memo is not None:
            known = self.memo.get(key)
            if known is not None:
                states = self.states
                if states is None:
                    self.state.apply(known.writes, known.buckets)
                    self.state.set_known_root(known.state_root)
                    return known
                after = states.get(key)
                if after is None:
                    after = self.state.successor(known.writes, known.buckets)
                    after.set_known_root(known.state_root)
                    states[key] = after
                self.state = after
                return known
        block_writes: dict[str, str | None] = {}
        receipts = []
        header = block.header
        for env in block.requests:
            req = env.message
            org, role = self.directory.get(env.signer, ("", ""))
            app = self.apps.get(req.app)
            if app is None:
                receipts.append(Receipt(env.digest, False, f"unknown-app: {req.app}"))
                continue
            if req.op not in app.OPS:
                receipts.append(Receipt(env.digest, False, f"unknown-op: {req.app}.{req.op}"))
                continue
            tx = Tx(env.digest, env.signer, org, role, req.op, req.args, header.height, header.timestamp)
            view = _TxView(req.app + "/", self.state, block_writes)
            try:
                result = app.execute(tx, view)
            except Rejected as rej:
                receipts.append(Receipt(env.digest, False, rej.reason))
                continue
            except Exception as exc:  # an app bug must not stop the node; every node fails alike
                receipts.append(Receipt(env.digest, False, f"app-error: {type(exc).__name__}: {exc}"))
                continue
            block_writes.update(view.writes)
            receipts.append(Receipt(env.digest, True, "", result))
        writes = tuple(block_writes.items())
        buckets = tuple(bucket_of(key) for key, _ in writes)
        if self.states is None:
            self.state.apply(writes, buckets)
        else:
            self.state = self.state.successor(writes, buckets)
            self.states[key] = self.state
        outcome = BlockOutcome(tuple(receipts), writes, self.state.root(), buckets)
        if self.memo is not None:
            self.memo[key] = outcome
        return outcome
