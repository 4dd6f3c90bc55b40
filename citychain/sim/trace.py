"""Recording a simulated run: every message, drop, phase change, timer and fault, in order.

Opt-in (``simulate(scenario, record=True)``): with recording off nothing here is on the
simulator's path. With it on, three observers are put around what the simulator
already has, and none of them changes what happens (no randomness is drawn, no
effect is added or removed), so a recorded run is the same run, and the same
scenario and seed give the same trace:

- ``RecordingNetwork`` (a ``SimNetwork``): each copy sent, with its departure time and
  the link's loss; each timer fired; partitions and cuts.
- ``Tap``: stands where a node's ``on_message`` stood in the network, so it sees every
  copy arrive (delivered, or lost to a crashed or paused node).
- ``Watched``: wraps a node's replica (outside any Byzantine wrapper, so it sees the
  effects the node performs) and reads the phase changes off the effects it returns
  (the durable records a replica writes before it votes: pre-prepared, prepared with
  its certificate, view change sent, view installed with O, checkpoint stable; Execute
  with its commit certificate) and the replica's watermarks and log size after each step.

Drops are recorded where the node counts them (``Metrics.drop``), with the envelope the
replica named or, for the node's own checks, the one being delivered.

The events are plain dicts; ``Trace`` holds them with a header and reads and writes
the JSON-lines form docs/teaching.md describes.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

from consensus.durable import Accepted, Prepared, Proposed, Stabilised, ViewChangeSent, ViewInstalled
from consensus.effects import Drop, Execute, Persist
from consensus.events import Adopted, Executed
from consensus.quorum import quorum
from node.fairqueue import TURN_TIMER

from .network import SimNetwork

FORMAT = "citychain-trace/1"
DIGEST = 16  # hex characters of a digest kept in a trace (a request's id is kept whole)


def describe(env) -> dict:
    """The fields a trace keeps of a signed message: kind, sender, view, seq, digest prefix."""
    m = env.message
    kind = m.KIND
    out = {"kind": kind, "from": env.signer, "view": getattr(m, "view", None), "seq": getattr(m, "seq", None)}
    if kind in ("pre-prepare", "prepare", "commit", "block-request", "block-reply"):
        out["digest"] = m.digest[:DIGEST]  # the block's digest
    elif kind == "checkpoint":
        out["digest"] = m.block_hash[:DIGEST]
    elif kind == "request":
        out["digest"] = env.digest  # the transaction id, whole
    else:
        out["digest"] = env.digest[:DIGEST]
    if kind == "view-change":
        out["seq"] = m.stable_seq
        out["prepared"] = [p.pre_prepare.message.seq for p in m.prepared]
    elif kind == "new-view":
        out["o"] = [[p.message.seq, p.message.digest[:DIGEST]] for p in m.pre_prepares]
        out["view_changes_from"] = sorted(e.signer for e in m.view_changes)
    elif kind == "pre-prepare":
        out["txs"] = len(m.block.requests)
    elif kind == "fetch":
        out["seq"] = m.to_height
    return out


class Trace:
    """A recorded run: ``header`` (the chain and its quorum) and ``events`` (in time order)."""

    def __init__(self, header: dict, events: list[dict]):
        self.header = header
        self.events = events

    def write(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as out:
            out.write(json.dumps(self.header, sort_keys=True) + "\n")
            for ev in self.events:
                out.write(json.dumps(ev, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> "Trace":
        with open(path, encoding="utf-8") as src:
            lines = [json.loads(line) for line in src if line.strip()]
        if not lines or lines[0].get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} trace")
        return cls(lines[0], lines[1:])

    def of(self, *kinds: str) -> list[dict]:
        return [e for e in self.events if e["ev"] in kinds]


class Tap:
    """Stands for one node in the network's tables: records each copy's arrival."""

    __slots__ = ("id", "node", "recorder")

    def __init__(self, node, recorder: "Recorder"):
        self.id = node.id
        self.node = node
        self.recorder = recorder
        recorder.turns[node.id] = getattr(node, "turns", None)

    def on_message(self, env, now: int, link: str | None = None) -> None:
        node = self.node
        status = "node-down" if node.down else "node-paused" if node.paused else "ok"
        rec = self.recorder
        rec.add(now, "deliver", to=self.id, msg=rec.msg_id(env), status=status, **rec.desc(env))
        rec.current[self.id] = env
        try:
            node.on_message(env, now, link)
        finally:
            rec.current[self.id] = None


class Watched:
    """A node's replica, observed: forwards everything, records phase changes."""

    def __init__(self, inner, node_id: str, recorder: "Recorder"):
        self.inner = inner
        self.node_id = node_id
        self.recorder = recorder

    def __getattr__(self, attr):
        if attr == "inner" or attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def step(self, event) -> list:
        effects = self.inner.step(event)
        kind = type(event)
        if kind is Executed or kind is Adopted:
            block = getattr(event, "block", None)
            seq = event.seq if kind is Executed else block.height
            digest = (event.block_hash if kind is Executed else block.hash)[:DIGEST]
            self.recorder.add(event.now, "executed", node=self.node_id, seq=seq, digest=digest,
                              via="consensus" if kind is Executed else "state-transfer")
        self.recorder.effects(self.node_id, self.inner, effects, event.now)
        return effects

    def deliver(self, env, now: int) -> list:
        effects = self.inner.deliver(env, now)
        self.recorder.effects(self.node_id, self.inner, effects, now)
        return effects


class RecordingNetwork(SimNetwork):
    """The simulated network, recording each copy sent, each timer fired and each fault."""

    recorder: "Recorder"

    def attach(self, node_id: str, on_message, on_timer, votes: bool = True) -> None:
        super().attach(node_id, Tap(on_message.__self__, self.recorder).on_message, on_timer, votes)

    def _why_lost(self, src: str, dst: str) -> str:
        if (src, dst) in self.cuts:
            return "cut"
        if self.group_of and self.group_of.get(src, -1) != self.group_of.get(dst, -1):
            return "partition"
        return "link-loss"

    def _transmit(self, src: str, env, at: int, route) -> None:
        rec = self.recorder
        per_copy = round(env.size * self.ns_per_byte)
        free = self.uplink_free[src]
        departure = at if at > free else free
        msg, desc = rec.msg_id(env), rec.desc(env)
        for handler, _lat, loss in route:
            departure += per_copy
            dst = handler.__self__.id
            rec.add(departure, "send", to=dst, msg=msg, size=env.size, loss=loss,
                    certain_loss=self._why_lost(src, dst) if loss >= 1.0 else None, **desc)
        super()._transmit(src, env, at, route)

    def client_send(self, near: str, dst: str, env, at: int) -> None:
        latency, loss = self.link(near, dst)
        self.recorder.add(at, "send", to=dst, msg=self.recorder.msg_id(env), size=env.size, loss=loss,
                          certain_loss=self._why_lost(near, dst) if loss >= 1.0 else None,
                          **self.recorder.desc(env))
        super().client_send(near, dst, env, at)

    def _fire(self, node: str, name: str, at: int) -> None:
        if name != TURN_TIMER:  # the node's CPU taking the next waiting message: scheduling, not protocol
            self.recorder.add(at, "timer", node=node, name=name)
        super()._fire(node, name, at)


class Recorder:
    """Collects a run's events; ``trace()`` hands them over as a ``Trace``."""

    def __init__(self, replicas: tuple[str, ...], engine):
        self.engine = engine  # its clock dates the drops a node counts
        self.events: list[dict] = []
        self.replicas = replicas
        self.n = len(replicas)
        self.q = quorum(self.n)
        self._ids: dict = {}  # envelope -> message number (envelopes hash by identity)
        self._desc: dict = {}
        self.current: dict[str, object] = {}  # node -> envelope being delivered to it
        self.turns: dict[str, object] = {}  # node -> its fair queue (the envelope it serves from there)
        self.dropped: dict[str, deque] = {}  # node -> envelopes of Drop effects not yet counted
        self._state: dict[str, tuple] = {}

    def add(self, t: int, ev: str, **fields) -> None:
        fields["t"] = t
        fields["ev"] = ev
        self.events.append(fields)

    def msg_id(self, env) -> int:
        known = self._ids.get(env)
        if known is None:
            known = self._ids[env] = len(self._ids) + 1
        return known

    def desc(self, env) -> dict:
        known = self._desc.get(env)
        if known is None:
            known = self._desc[env] = describe(env)
        return known

    # ---- hooks ------------------------------------------------------------------

    def watch(self, node_id: str, replica) -> Watched:
        self._state.pop(node_id, None)
        return Watched(replica, node_id, self)

    def counting(self, metrics) -> None:
        """Record every drop the node counts, with the message it was about."""
        count = metrics.drop

        def drop(node: str, reason: str) -> None:
            pending = self.dropped.get(node)
            env = pending.popleft() if pending else self.current.get(node)
            if env is None and self.turns.get(node) is not None:
                env = self.turns[node].serving
            fields = {"msg": self.msg_id(env), **self.desc(env)} if env is not None else {}
            self.add(self.engine.now, "drop", node=node, reason=reason, **fields)
            count(node, reason)

        metrics.drop = drop

    def fault(self, t: int, action, target: str | None) -> None:
        self.add(t, "fault", action=action.kind, target=target,
                 groups=[sorted(g) for g in action.groups] if action.groups else None,
                 text=action.describe() if action.target != "primary" else f"{action.kind} {target} (the primary)")

    def effects(self, node: str, replica, effects: list, t: int) -> None:
        add = self.add
        for e in effects:
            kind = type(e)
            if kind is Drop:
                if e.envelope is not None:
                    self.dropped.setdefault(node, deque()).append(e.envelope)
            elif kind is Persist:
                r = e.record
                rk = type(r)
                if rk is Accepted:
                    m = r.pre_prepare.message
                    add(t, "pre-prepared", node=node, view=m.view, seq=m.seq, digest=m.digest[:DIGEST],
                        primary=r.pre_prepare.signer)
                elif rk is Proposed:
                    m = r.pre_prepare
                    add(t, "proposed", node=node, view=m.view, seq=m.seq, digest=m.digest[:DIGEST],
                        txs=sorted(req.digest for req in m.block.requests))
                elif rk is Prepared:
                    pp = r.proof.pre_prepare
                    add(t, "prepared", node=node, view=pp.message.view, seq=pp.message.seq,
                        digest=pp.message.digest[:DIGEST], primary=pp.signer,
                        prepares_from=sorted(p.signer for p in r.proof.prepares), needed=self.q - 1)
                elif rk is ViewChangeSent:
                    vc = r.view_change
                    add(t, "view-change-started", node=node, view=vc.view, stable_seq=vc.stable_seq,
                        prepared=[p.pre_prepare.message.seq for p in vc.prepared])
                elif rk is ViewInstalled:
                    nv = r.new_view.message if r.new_view is not None else None
                    add(t, "view-installed", node=node, view=r.view, primary=self.replicas[r.view % self.n],
                        o=[[p.message.seq, p.message.digest[:DIGEST]] for p in nv.pre_prepares] if nv else [],
                        view_changes_from=sorted(v.signer for v in nv.view_changes) if nv else [])
                elif rk is Stabilised:
                    add(t, "checkpoint-stable", node=node, seq=r.seq, proof_from=sorted(p.signer for p in r.proof),
                        proof_kind=r.proof[0].message.KIND if r.proof else None)
            elif kind is Execute:
                b = e.block
                cert = e.certificate
                add(t, "committed-local", node=node, view=cert[0].message.view if cert else None, seq=b.height,
                    digest=b.hash[:DIGEST], commits_from=sorted(c.signer for c in cert), needed=self.q,
                    txs=len(b.requests))
        state = (replica.low, replica.high, len(replica.log), replica.view, replica.active)
        if self._state.get(node) != state:
            self._state[node] = state
            add(t, "state", node=node, low=state[0], high=state[1], log=state[2], view=state[3], active=state[4])

    # ---- the result -------------------------------------------------------------------

    def trace(self, header: dict) -> Trace:
        """The events in time order (ties: in the order they were recorded), each numbered."""
        delivered: dict[tuple[int, str], int] = {}
        for ev in self.events:
            if ev["ev"] == "deliver":
                key = (ev["msg"], ev["to"])
                delivered[key] = delivered.get(key, 0) + 1
        for ev in self.events:
            if ev["ev"] == "send":
                key = (ev["msg"], ev["to"])
                loss, certain = ev.pop("loss"), ev.pop("certain_loss")
                if delivered.get(key):
                    delivered[key] -= 1
                    ev["lost"] = None
                else:
                    ev["lost"] = certain or ("link-loss" if loss else "not-arrived-by-end")
        order = sorted(range(len(self.events)), key=lambda i: self.events[i]["t"])
        events = []
        for i in order:
            ev = self.events[i]
            ev["i"] = len(events)
            events.append(ev)
        return Trace(header, events)

