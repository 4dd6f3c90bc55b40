"""Pictures of a recorded run: a sequence diagram of one instance, and replica state over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..sim.trace import Trace  # noqa: E402
from .instance import Instance  # noqa: E402
from .narrate import quorum_words  # noqa: E402

COLOURS = {"request": "#9e9e9e", "pre-prepare": "#1f77b4", "prepare": "#ff7f0e", "commit": "#2ca02c",
           "checkpoint": "#9467bd", "view-change": "#d62728", "new-view": "#8c564b",
           "new-view-request": "#e377c2", "fetch": "#7f7f7f", "blocks": "#bcbd22"}
MAX_LANES = 8  # above this many nodes: the primary, a few backups and one lane for the rest


def _lanes(inst: Instance) -> tuple[list[str], dict[str, int]]:
    nodes = inst.header["nodes"]
    if len(nodes) <= MAX_LANES:
        return nodes, {n: i for i, n in enumerate(nodes)}
    involved = []
    for e in inst.events:
        for key in ("primary", "node"):
            if e.get(key) in nodes and e[key] not in involved:
                involved.append(e[key])
    shown = sorted(set(([e["primary"] for e in inst.events if e.get("primary")][:1]) + involved[:MAX_LANES - 2]),
                   key=nodes.index)[:MAX_LANES - 1]
    rest = len(nodes) - len(shown)
    lanes = shown + [f"{rest} other nodes"]
    index = {n: lanes.index(n) if n in shown else len(lanes) - 1 for n in nodes}
    return lanes, index


def sequence_diagram(inst: Instance, out_base: Path) -> list[Path]:
    """Write ``out_base``.svg and .png: a lane per node, an arrow per copy coloured by phase,
    and a mark where each node became prepared and committed, with the quorum that did it."""
    lanes, index = _lanes(inst)
    t0 = inst.start
    span = max(inst.end - t0, 1) / 1e6
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.7 * len(lanes)))
    for i, name in enumerate(lanes):
        ax.axhline(i, color="#dddddd", lw=1, zorder=0)
    crowd = len(inst.copies) > 400
    seen_kinds = set()
    for c in inst.copies:
        if c.src not in index or c.dst not in index:
            continue
        y0, y1 = index[c.src], index[c.dst]
        x0 = (c.sent - t0) / 1e6
        colour = COLOURS.get(c.kind, "black")
        seen_kinds.add(c.kind)
        if c.arrived is None or c.status != "ok":
            x1 = x0 + span * 0.03
            ym = y0 + (y1 - y0) * 0.4
            ax.plot([x0, x1], [y0, ym], color=colour, lw=1, ls="--", alpha=0.8)
            ax.plot([x1], [ym], marker="x", color="red", ms=7)
            continue
        x1 = (c.arrived - t0) / 1e6
        if y0 == y1:
            continue
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color=colour, lw=0.6 if crowd else 1.1,
                                    alpha=0.35 if crowd else 0.85, shrinkA=0, shrinkB=2))
    prepared_q, commit_q = quorum_words(inst.header)
    labelled = set()
    for e in inst.events:
        node = e.get("node")
        if node not in index or e["t"] < t0:
            continue
        x, y = (e["t"] - t0) / 1e6, index[node]
        ev = e["ev"]
        style = {"prepared": ("D", "#ff7f0e", f"prepared ({prepared_q} prepares)"),
                 "committed-local": ("*", "#2ca02c", f"committed ({commit_q} commits)"),
                 "view-change-started": ("v", "#d62728", "view change started"),
                 "view-installed": ("s", "#8c564b", "view installed"),
                 "executed": ("|", "black", "executed"),
                 "checkpoint-stable": ("P", "#9467bd", "checkpoint stable"),
                 "drop": ("X", "red", "refused")}.get(ev)
        if style is None:
            continue
        marker, colour, label = style
        ax.plot([x], [y], marker=marker, color=colour, ms=9 if ev != "executed" else 14, zorder=5,
                label=label if label not in labelled else None, ls="none")
        labelled.add(label)
        if ev == "prepared" and index[node] < len(lanes) and lanes[index[node]] == node:
            ax.annotate(f"{len(e['prepares_from'])} prepares", (x, y), textcoords="offset points", xytext=(4, 7),
                        fontsize=7, color="#b35900")
        elif ev == "committed-local" and lanes[index[node]] == node:
            ax.annotate(f"{len(e['commits_from'])} commits", (x, y), textcoords="offset points", xytext=(4, -12),
                        fontsize=7, color="#1a6e1a")
        elif ev == "drop" and lanes[index[node]] == node:
            ax.annotate(e["reason"], (x, y), textcoords="offset points", xytext=(4, -12), fontsize=7, color="red")
    for e in inst.events:
        if e["ev"] == "fault" and e["t"] >= t0:
            x = (e["t"] - t0) / 1e6
            ax.axvline(x, color="red", ls=":", lw=1)
            ax.text(x, len(lanes) - 0.5, e["text"], fontsize=7, color="red", rotation=0)
    for kind in sorted(seen_kinds):
        ax.plot([], [], color=COLOURS.get(kind, "black"), label=kind.upper())
    ax.set_xlim(-span * 0.02, span * 1.06)  # arrows do not widen the axes by themselves
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_ylim(len(lanes) - 0.4, -0.6)
    ax.set_xlabel(f"ms since {t0 / 1e6:.2f} ms into the run")
    h = inst.header
    ax.set_title(f"{h['scenario']}: {inst.title}; n = {h['n']}, f = {h['f']}, quorum q = {h['quorum']}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    paths = [out_base.with_suffix(".svg"), out_base.with_suffix(".png")]
    fig.savefig(paths[0])
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths


def replica_state(trace: Trace, path: Path, max_nodes: int = 12) -> Path:
    """Low and high watermarks, the stable checkpoint and the log size per node over time:
    the window sliding on at each stable checkpoint, the log emptied by garbage collection."""
    nodes = trace.header["nodes"][:max_nodes]
    series: dict[str, list[tuple[float, int, int, int]]] = {n: [] for n in nodes}
    for e in trace.events:
        if e["ev"] == "state" and e["node"] in series:
            series[e["node"]].append((e["t"] / 1e6, e["low"], e["high"], e["log"]))
    end = trace.header.get("end_ns", 0) / 1e6
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    cmap = plt.get_cmap("tab20")
    for i, (node, points) in enumerate(series.items()):
        if not points:
            continue
        xs = [p[0] for p in points] + [max(end, points[-1][0])]
        lows = [p[1] for p in points] + [points[-1][1]]
        highs = [p[2] for p in points] + [points[-1][2]]
        logs = [p[3] for p in points] + [points[-1][3]]
        colour = cmap(i % 20)
        top.step(xs, lows, where="post", color=colour, lw=1.2, label=f"{node}")
        top.step(xs, highs, where="post", color=colour, lw=0.8, ls="--")
        bottom.step(xs, logs, where="post", color=colour, lw=1)
    k, window = trace.header["checkpoint_interval"], trace.header["watermark_window"]
    top.set_ylabel("sequence number")
    top.set_title(f"{trace.header['scenario']}: low watermark h = stable checkpoint (solid), high watermark "
                  f"H = h + {window} (dashed); checkpoint every K = {k}", fontsize=9)
    top.legend(fontsize=7, ncol=2, loc="upper left")
    bottom.set_ylabel("log size (slots held)")
    bottom.set_xlabel("virtual time (ms)")
    bottom.set_title("each drop is garbage collection: the log at and below a new stable checkpoint is discarded",
                     fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
