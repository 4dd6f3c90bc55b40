"""Why was a transaction or block not committed? Read off a recorded run's trace:
which messages from which nodes never arrived at a node, and why (the sender crashed,
was Byzantine, was cut off, was changing view; the copy was lost or refused)."""

from __future__ import annotations

from ..sim.trace import Trace
from .instance import copies
from .narrate import NAMES, WHY, ms


class Why:
    def __init__(self, trace: Trace):
        self.trace = trace
        self.h = trace.header
        self.nodes = self.h["nodes"]
        self.q = self.h["quorum"]
        self.copies = copies(trace)
        self.faults = trace.of("fault")
        self.end = self.h.get("end_ns", trace.events[-1]["t"] if trace.events else 0)

    def primary(self, view: int) -> str:
        return self.nodes[view % len(self.nodes)]

    def down_at(self, node: str, t: int) -> dict | None:
        """The crash (or pause) that had ``node`` out at ``t``, if any."""
        out = None
        for f in self.faults:
            if f["t"] > t:
                break
            if f["target"] == node and f["action"] in ("crash", "pause"):
                out = f
            elif f["target"] == node and f["action"] in ("recover", "resume"):
                out = None
        return out

    def cut_off(self, a: str, b: str, t: int) -> dict | None:
        out = None
        for f in self.faults:
            if f["t"] > t:
                break
            if f["action"] == "heal":
                out = None
            elif f["action"] in ("partition", "cut") and f["groups"]:
                groups = [set(g) for g in f["groups"]]
                side = {n: i for i, g in enumerate(groups) for n in g}
                if f["action"] == "cut" and a in groups[0] and b in groups[1]:
                    out = f
                elif f["action"] == "partition" and side.get(a, -1) != side.get(b, -1):
                    out = f
        return out

    def sender_state(self, node: str, t: int) -> str | None:
        """Why ``node`` might not have sent anything around ``t``."""
        crash = self.down_at(node, t)
        if crash:
            return f"{node} was {'crashed' if crash['action'] == 'crash' else 'paused'} ({crash['text']} at {ms(crash['t'])[2:]})"
        byz = self.h.get("byzantine", {}).get(node)
        if byz:
            return f"{node} is Byzantine ({byz})"
        states = [e for e in self.trace.events if e["ev"] == "state" and e["node"] == node and e["t"] <= t]
        if states and not states[-1]["active"]:
            return f"{node} was changing view (to view {states[-1]['view']}): a replica between VIEW-CHANGE and " \
                   f"NEW-VIEW votes for nothing"
        return None

    def missing(self, kind: str, sender: str, to: str, view: int, seq: int, digest: str | None) -> str:
        """Why ``to`` never counted ``sender``'s ``kind`` for (view, seq)."""
        name = NAMES[kind]
        sent = [c for c in self.copies if c.kind == kind and c.src == sender and c.dst == to and c.seq == seq
                and c.view == view]
        if not sent:
            crash = self.down_at(sender, self.end)
            byz = self.h.get("byzantine", {}).get(sender)
            cut = self.cut_off(sender, to, self.end)
            if crash or byz:
                return f"{sender}'s {name} never came: {self.sender_state(sender, self.end)}"
            if cut:
                return f"{sender}'s {name} never came: {cut['text']}"
            before = {"prepare": "pre-prepared", "commit": "prepared"}.get(kind)
            if before and not any(e["ev"] == before and e["node"] == sender and e["seq"] == seq
                                  for e in self.trace.events):
                return f"{sender} never sent its {name}: it never {before} block {seq} itself"
            reason = self.sender_state(sender, self.end)
            return f"{sender}'s {name} never came: {reason or 'it was never sent'}"
        for c in sent:
            if digest and c.digest[:len(digest)] != digest[:len(c.digest)]:
                return f"{sender}'s {name} named another block (d={c.digest[:8]}): it was told a different story"
            if c.status.startswith("lost"):
                return f"{sender}'s {name} was lost on the way ({c.status[6:]}) at {ms(c.sent)[2:]}"
            if c.status != "ok":
                return f"{sender}'s {name} arrived while {to} was {c.status[5:]}"
        drops = [e for e in self.trace.events if e["ev"] == "drop" and e["node"] == to and e.get("kind") == kind
                 and e.get("from") == sender and e.get("seq") == seq]
        if drops:
            return f"{to} refused {sender}'s {name}: {WHY.get(drops[0]['reason'], drops[0]['reason'])}"
        return f"{sender}'s {name} arrived"

    def block(self, seq: int, node: str) -> list[str]:
        out = []
        committed = [e for e in self.trace.events if e["ev"] == "committed-local" and e["node"] == node
                     and e["seq"] == seq]
        if committed:
            e = committed[0]
            return [f"{node} committed block {seq} at {ms(e['t'])[2:]} with commits from {', '.join(e['commits_from'])}"]
        crash = self.down_at(node, self.end)
        if crash:
            out.append(f"{node} is down at the end of the run: {crash['text']} at {ms(crash['t'])[2:]}")
        views = sorted({c.view for c in self.copies if c.seq == seq and c.kind in ("pre-prepare", "prepare", "commit")}
                       | {e["view"] for e in self.trace.events if e["ev"] == "proposed" and e["seq"] == seq})
        if not views:
            views = [0]
        view = views[-1]
        primary = self.primary(view)
        pre = [e for e in self.trace.events if e["ev"] == "pre-prepared" and e["node"] == node and e["seq"] == seq
               and e["view"] == view]
        digest = pre[0]["digest"] if pre else None
        if not pre and node != primary:
            out.append(f"{node} never pre-prepared block {seq} in view {view}: "
                       + self.missing("pre-prepare", primary, node, view, seq, None))
        prepared = [e for e in self.trace.events if e["ev"] == "prepared" and e["node"] == node and e["seq"] == seq]
        if not prepared:
            have = {c.src for c in self.copies if c.kind == "prepare" and c.dst == node and c.seq == seq
                    and c.view == view and c.status == "ok" and (digest is None or c.digest == digest)}
            if node != primary and pre:
                have.add(node)
            out.append(f"{node} never prepared block {seq}: it holds {len(have)} matching prepares "
                       f"({', '.join(sorted(have)) or 'none'}), needs {self.q - 1}")
            for sender in self.nodes:
                if sender not in have and sender != primary and sender != node:
                    out.append("  " + self.missing("prepare", sender, node, view, seq, digest))
        have = {c.src for c in self.copies if c.kind == "commit" and c.dst == node and c.seq == seq
                and c.view == view and c.status == "ok"}
        if prepared:
            have.add(node)
        out.append(f"{node} never committed block {seq}: it holds {len(have)} matching commits "
                   f"({', '.join(sorted(have)) or 'none'}), needs {self.q}")
        for sender in self.nodes:
            if sender not in have and sender != node:
                out.append("  " + self.missing("commit", sender, node, view, seq, digest))
        return out

    def tx(self, tx: str, node: str | None) -> list[str]:
        sends = [e for e in self.trace.events if e["ev"] == "send" and e["kind"] == "request"
                 and e["digest"].startswith(tx)]
        if not sends:
            return [f"no transaction {tx} was submitted in this run"]
        full = sends[0]["digest"]
        proposals = [e for e in self.trace.events if e["ev"] == "proposed" and full in e["txs"]]
        head = [f"transaction {full[:16]}… submitted at {ms(sends[0]['t'])[2:]} by {sends[0]['from']}"]
        if not proposals:
            reached = sorted({c.dst for c in self.copies if c.kind == "request" and c.msg == sends[0]["msg"]
                              and c.status == "ok"})
            head.append(f"no primary ever proposed it; it reached {', '.join(reached) or 'no node'}")
            views = sorted({e["view"] for e in self.trace.of("state")} | {0})
            for v in views:
                reason = self.sender_state(self.primary(v), self.end)
                if reason:
                    head.append(f"  the primary of view {v}: {reason}")
            return head
        seq = proposals[-1]["seq"]
        head.append(f"proposed as block {seq} by {proposals[-1]['node']} in view {proposals[-1]['view']}")
        targets = [node] if node else [n for n in self.nodes if not self.h.get("byzantine", {}).get(n)]
        for n in targets:
            head.extend(self.block(seq, n))
        return head


def explain(trace: Trace, tx: str | None = None, height: int | None = None, node: str | None = None) -> list[str]:
    why = Why(trace)
    if node is not None and node not in why.nodes:
        raise ValueError(f"no consensus node {node} (nodes: {', '.join(why.nodes)})")
    if tx:
        return why.tx(tx, node)
    targets = [node] if node else [n for n in why.nodes if not why.h.get("byzantine", {}).get(n)]
    out = []
    for n in targets:
        out.extend(why.block(height, n))
    return out
