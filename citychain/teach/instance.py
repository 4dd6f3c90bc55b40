"""One consensus instance out of a recorded run: a block's round, or a view change.

Works on a ``Trace`` (citychain/sim/trace.py) alone, so it serves a trace read back
from trace.jsonl as well as one just recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sim.trace import Trace

ROUND_KINDS = ("pre-prepare", "prepare", "commit")
VIEW_KINDS = ("view-change", "new-view", "new-view-request")


@dataclass
class Copy:
    """One copy of a message from one node to another: when it left, and when (if) it arrived."""

    msg: int
    kind: str
    src: str
    dst: str
    sent: int
    arrived: int | None
    status: str  # ok | node-down | node-paused | lost: cut | partition | link-loss | not-arrived-by-end
    view: int | None
    seq: int | None
    digest: str
    extra: dict = field(default_factory=dict)


def copies(trace: Trace) -> list[Copy]:
    """Every copy sent, paired with its arrival (copies of one message to one node pair up in order)."""
    arrivals: dict[tuple[int, str], list[dict]] = {}
    for ev in trace.events:
        if ev["ev"] == "deliver":
            arrivals.setdefault((ev["msg"], ev["to"]), []).append(ev)
    out = []
    for ev in trace.events:
        if ev["ev"] != "send":
            continue
        waiting = arrivals.get((ev["msg"], ev["to"]))
        arrival = waiting.pop(0) if waiting and ev["lost"] is None else None
        extra = {k: ev[k] for k in ("o", "view_changes_from", "prepared", "txs") if k in ev}
        out.append(Copy(ev["msg"], ev["kind"], ev["from"], ev["to"], ev["t"],
                        arrival["t"] if arrival else None,
                        arrival["status"] if arrival else f"lost: {ev['lost']}",
                        ev["view"], ev["seq"], ev["digest"], extra))
    return out


@dataclass
class Instance:
    """What a diagram or a narration shows: a title, a time window, copies and events."""

    title: str
    kind: str  # block | view-change
    start: int
    end: int
    copies: list[Copy]
    events: list[dict]  # phase changes, drops, timers, faults in the window
    header: dict


class NotInTrace(ValueError):
    """The block or view change asked for is not in the run."""


def _drop_about(ev: dict, kinds, seqs=None, views=None) -> bool:
    if ev.get("kind") not in kinds:
        return False
    if seqs is not None and ev.get("seq") not in seqs:
        return False
    return views is None or ev.get("view") in views


def block_instance(trace: Trace, height: int) -> Instance:
    """The round that committed block ``height``: its pre-prepares, prepares, commits,
    every node's phase changes for it, and the drops of its messages."""
    phases = [e for e in trace.events if e["ev"] in ("proposed", "pre-prepared", "prepared", "committed-local",
                                                     "executed") and e.get("seq") == height]
    committed = [e for e in phases if e["ev"] == "committed-local"]
    if not committed:
        raise NotInTrace(f"block {height} was not committed by any node in this run")
    view = committed[0]["view"]
    cps = [c for c in copies(trace) if c.kind in ROUND_KINDS and c.seq == height and c.view == view]
    start = min([c.sent for c in cps] + [e["t"] for e in phases])
    last_exec = [e["t"] for e in phases if e["ev"] == "executed" and e.get("via") == "consensus"]
    end = max(last_exec + [c.arrived or c.sent for c in cps])
    events = [e for e in phases if e.get("view", view) == view or e["ev"] == "executed"]
    events += [e for e in trace.events if e["ev"] == "drop" and _drop_about(e, ROUND_KINDS, {height}, {view})]
    events += [e for e in trace.events if e["ev"] in ("fault", "checkpoint-stable") and start <= e["t"] <= end]
    events += [e for e in trace.events if e["ev"] == "checkpoint-stable" and e["seq"] == height]
    events = _unique_sorted(events)
    return Instance(f"block {height} (view {view})", "block", start, end, cps, events, trace.header)


def installed_views(trace: Trace) -> list[int]:
    return sorted({e["view"] for e in trace.events if e["ev"] == "view-installed"})


def view_change_instance(trace: Trace, number: int) -> Instance:
    """The ``number``-th view change of the run (1 = the first view installed above 0):
    the VIEW-CHANGEs for it, the NEW-VIEW with its O set, and the rounds of the re-issued
    blocks in the new view."""
    views = installed_views(trace)
    if not 1 <= number <= len(views):
        raise NotInTrace(f"the run installed {len(views)} view(s) above 0; there is no view change {number}")
    view = views[number - 1]
    started = [e for e in trace.events if e["ev"] == "view-change-started" and e["view"] == view]
    installed = [e for e in trace.events if e["ev"] == "view-installed" and e["view"] == view]
    reissued = {seq for e in installed for seq, _ in e["o"]}
    all_copies = copies(trace)
    cps = [c for c in all_copies if c.kind in VIEW_KINDS and c.view == view]
    cps += [c for c in all_copies if c.kind in ROUND_KINDS and c.view == view and c.seq in reissued]
    phases = [e for e in trace.events if e["ev"] in ("pre-prepared", "prepared", "committed-local")
              and e.get("view") == view and e["seq"] in reissued]
    times = [c.sent for c in cps] + [e["t"] for e in started + installed + phases]
    start, end = min(times), max([c.arrived or c.sent for c in cps] + [e["t"] for e in installed + phases])
    timers = [e for e in trace.events if e["ev"] == "timer" and e["name"].startswith("view-change")
              and start - 1 <= e["t"] <= end]
    first_vc = min(e["t"] for e in started) if started else start
    cause = [e for e in trace.events if e["ev"] == "timer" and e["name"] == "view-change"
             and e["t"] <= first_vc and e["t"] >= first_vc - 1]
    events = started + installed + phases + timers + cause
    events += [e for e in trace.events if e["ev"] == "drop" and (_drop_about(e, VIEW_KINDS, views={view})
                                                                or _drop_about(e, ROUND_KINDS, reissued, {view}))]
    events += [e for e in trace.events if e["ev"] == "fault" and e["t"] <= end]
    return Instance(f"view change to view {view}", "view-change", start, end, cps, _unique_sorted(events),
                    trace.header)


def _unique_sorted(events: list[dict]) -> list[dict]:
    seen = {}
    for e in events:
        seen[e["i"]] = e
    return [seen[i] for i in sorted(seen)]
