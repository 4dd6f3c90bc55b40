"""Step-by-step lines for one consensus instance: who sent what, who became prepared
and committed with which quorum, what was refused and why."""

from __future__ import annotations

from .instance import Copy, Instance

NAMES = {"pre-prepare": "PRE-PREPARE", "prepare": "PREPARE", "commit": "COMMIT", "checkpoint": "CHECKPOINT",
         "view-change": "VIEW-CHANGE", "new-view": "NEW-VIEW", "new-view-request": "NEW-VIEW-REQUEST",
         "request": "REQUEST", "fetch": "FETCH", "blocks": "BLOCKS"}

WHY = {  # a drop reason, as a student reads it (docs/messages.md has every reason)
    "conflicting-pre-prepare": "conflicting digest (the primary proposed two different blocks for one sequence)",
    "duplicate": "a copy it already had",
    "stale": "at or below its stable checkpoint (a late arrival)",
    "old-view": "for a view it has left",
    "beyond-high-watermark": "above its high watermark",
    "pre-prepare-not-from-primary": "not from the primary of the view",
    "prepare-from-primary": "the primary does not send PREPARE",
    "stale-new-view": "a NEW-VIEW for a view it already installed",
    "stale-view-change": "a VIEW-CHANGE for a view it already left",
    "bad-signature": "the signature does not verify",
}


def ms(t: int) -> str:
    return f"t={t / 1e6:.2f} ms"


def quorum_words(header: dict) -> tuple[str, str]:
    """How the prepared and committed quorums read for this n: ("2f = 2", "q = 3") at n = 4."""
    n, f, q = header["n"], header["f"], header["quorum"]
    if n == 3 * f + 1:
        return f"2f = {q - 1}", f"q = 2f+1 = {q}"
    return f"q-1 = {q - 1}", f"q = ⌈(n+f+1)/2⌉ = {q}"


def _msg(c: Copy) -> str:
    name = NAMES.get(c.kind, c.kind)
    if c.kind in ("pre-prepare", "prepare", "commit"):
        return f"{name}(view {c.view}, seq {c.seq}, d={c.digest[:8]})"
    if c.kind == "view-change":
        prepared = ", ".join(map(str, c.extra.get("prepared", []))) or "none"
        return f"{name}(view {c.view}, stable checkpoint {c.seq}, prepared seqs: {prepared})"
    if c.kind == "new-view":
        o = ", ".join(f"seq {s} d={d[:8]}" for s, d in c.extra.get("o", [])) or "nothing to re-issue"
        return f"{name}(view {c.view}, V = VIEW-CHANGEs of {', '.join(c.extra.get('view_changes_from', []))}; O: {o})"
    return f"{name}(view {c.view}, seq {c.seq})"


def _others(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:5])} and {len(names) - 5} others"


def lines(inst: Instance) -> list[str]:
    """The narration, in time order."""
    prepared_q, commit_q = quorum_words(inst.header)
    items: list[tuple[int, int, str]] = []  # (time, order, line)
    by_msg: dict[int, list[Copy]] = {}
    for c in inst.copies:
        by_msg.setdefault(c.msg, []).append(c)
    for msg, group in by_msg.items():
        first = group[0]
        to = sorted(c.dst for c in group)
        items.append((first.sent, 0, f"{ms(first.sent)} {first.src} sends {_msg(first)} to {_others(to)}"))
        for c in group:
            if c.status.startswith("lost"):
                items.append((c.sent, 1, f"{ms(c.sent)} {c.src}'s {NAMES.get(c.kind, c.kind)} to {c.dst} is lost "
                                         f"({c.status[6:]})"))
            elif c.status != "ok":
                items.append((c.arrived, 1, f"{ms(c.arrived)} {c.src}'s {NAMES.get(c.kind, c.kind)} reaches {c.dst}, "
                                            f"which is {c.status[5:]}: not processed"))
    # Equivocation: one primary, one (view, seq), two digests.
    proposals: dict[tuple, dict[str, list[str]]] = {}
    for c in inst.copies:
        if c.kind == "pre-prepare":
            proposals.setdefault((c.src, c.view, c.seq), {}).setdefault(c.digest, []).append(c.dst)
    for (src, view, seq), by_digest in proposals.items():
        if len(by_digest) > 1:
            told = "; ".join(f"d={d[:8]} to {', '.join(sorted(set(t)))}" for d, t in by_digest.items())
            t = min(c.sent for c in inst.copies if c.kind == "pre-prepare" and c.src == src and c.seq == seq)
            items.append((t, 1, f"{ms(t)} {src} EQUIVOCATES: two different blocks for view {view}, seq {seq}: {told}"))
    for e in inst.events:
        line = _event(e, prepared_q, commit_q)
        if line:
            items.append((e["t"], 2, f"{ms(e['t'])} {line}"))
    items.sort(key=lambda x: (x[0], x[1]))
    return [text for _, _, text in items]


def _event(e: dict, prepared_q: str, commit_q: str) -> str | None:
    ev = e["ev"]
    if ev == "proposed":
        return f"{e['node']} (primary of view {e['view']}) proposes block {e['seq']} d={e['digest'][:8]} " \
               f"with {len(e['txs'])} transaction(s)"
    if ev == "pre-prepared":
        return f"{e['node']} pre-prepared block {e['seq']}: accepted the PRE-PREPARE of {e['primary']} " \
               f"(view {e['view']}, d={e['digest'][:8]})"
    if ev == "prepared":
        n = len(e["prepares_from"])
        return (f"{e['node']} prepared block {e['seq']}: pre-prepare from {e['primary']} + {n} matching prepares "
                f"from {_others(e['prepares_from'])} (needs {prepared_q})")
    if ev == "committed-local":
        n = len(e["commits_from"])
        return (f"{e['node']} committed-local block {e['seq']}: {n} matching commits from "
                f"{_others(e['commits_from'])} (needs {commit_q})")
    if ev == "executed":
        how = "" if e["via"] == "consensus" else " (fetched by state transfer, with its commit certificate)"
        return f"{e['node']} executed block {e['seq']}{how}"
    if ev == "drop":
        about = ""
        if "kind" in e:
            seq = f" for seq {e['seq']}" if e.get("seq") is not None else ""
            about = f" {e['from']}'s {NAMES.get(e['kind'], e['kind'])}{seq} (view {e['view']})"
        return f"{e['node']} refused{about}: {WHY.get(e['reason'], e['reason'])}"
    if ev == "view-change-started":
        prepared = ", ".join(map(str, e["prepared"])) or "none"
        return (f"{e['node']} starts a view change to view {e['view']} (its stable point: seq {e['stable_seq']}; "
                f"prepared above it: {prepared})")
    if ev == "view-installed":
        o = ", ".join(f"seq {s}" for s, _ in e["o"]) or "nothing"
        return (f"{e['node']} installed view {e['view']} (primary {e['primary']}): the NEW-VIEW holds "
                f"{len(e['view_changes_from'])} VIEW-CHANGEs (needs {commit_q}); O re-issues {o}")
    if ev == "checkpoint-stable":
        return (f"{e['node']}'s checkpoint at seq {e['seq']} is stable ({len(e['proof_from'])} matching "
                f"{e['proof_kind']}s); its log up to {e['seq']} is discarded and the watermarks move on")
    if ev == "timer":
        return f"{e['node']}'s {e['name']} timer fires"
    if ev == "fault":
        return f"FAULT: {e['text']}"
    return None
