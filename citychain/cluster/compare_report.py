"""What ``cluster compare`` shows: per metric the two sides, a verdict and why they differ;
as a table on stdout, ``compare.json``, ``compare.png`` and a self-contained
``compare.html`` (the plot inlined, the style of ``citychain bench``'s report).

Verdicts: ``agree`` (within the metric's tolerance), ``expected`` (they differ in the
direction and roughly by the amount that what the simulator leaves out explains),
``check`` (they differ in a way the model's omissions cannot explain: look for a
modelling or counting bug; docs/deployment.md lists which is which).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..bench.report import STYLE  # noqa: E402
from ..bench.sweep import CONSENSUS_TYPES as CONSENSUS_KINDS  # noqa: E402
from .compare import VARIANT_FITTED, VARIANT_MEASURED, VARIANT_SHARED, compare  # noqa: E402

METRICS = [("throughput_tps", "throughput (tx/s)"), ("p50_ms", "latency p50 (ms)"), ("p95_ms", "latency p95 (ms)"),
           ("p99_ms", "latency p99 (ms)"), ("messages_per_block", "messages per block"),
           ("bytes_per_block", "bytes per block")]
DETAILS = [("send_rate_tps", "send rate (tx/s)"), ("committed_tx", "committed tx"), ("blocks", "blocks"),
           ("tx_per_block", "tx per block"), ("ms_per_block", "ms per block (interval)"), ("publishes_per_block", "node publishes per block (no status)"),
           ("status_notices_per_block", "status notices per block"), ("view_changes", "view changes"),
           ("retries", "client retries"), ("cpu_s_per_node", "CPU s per node"),
           ("cpu_us_per_message", "CPU µs per message received")]
LATENCY_TOLERANCE = (0.25, 2.0)  # relative, and absolute ms: closer than either is agreement
THROUGHPUT_TOLERANCE = 0.10
COUNT_TOLERANCE = 0.10  # messages per block: the same code sends the same messages
BYTES_TOLERANCE = 0.15


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"
    return str(value)


# ---- why they differ ---------------------------------------------------------------------------

class _Facts:
    """What the explanations quote, read once from the comparison."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.c, self.s = doc["cluster"], doc["simulator"]
        cal = doc["calibration"]
        broker = cal["broker"]
        self.n, self.cores, self.procs = doc["nodes"], doc["cores"], doc["node_processes"]
        self.hop = broker["one_way_ms"]["p50"]
        loaded = broker.get("one_way_under_load_ms", {})
        self.hop_loaded = loaded["p50"] if loaded.get("samples") else None
        self.commit = cal["storage_commit_ms"]
        self.verify_us = cal["cpu"]["verify_us"]
        self.measured = doc["variants"].get(VARIANT_MEASURED)
        self.shared = doc["variants"].get(VARIANT_SHARED)
        self.fitted = doc["variants"].get(VARIANT_FITTED)
        c, s = self.c, self.s
        self.cpu_line = (
            f"The node processes spent {c['cpu_us_per_message']:,.0f} µs of CPU per message they received; the model "
            f"charges {s['cpu_us_per_message']:,.0f} µs (the signature checks and executions calibrated here, "
            f"{self.verify_us:.0f} µs a verification): Python's per-message work (MQTT and asyncio, decoding, the "
            f"replica's bookkeeping, status notices, the store) is not modelled.")
        self.share_line = (
            f"{self.procs} node processes share {self.cores} cores (they used {c.get('cpu_utilisation', 0):.0%} of "
            f"them, besides the broker, this load driver and whatever else runs on the machine); the simulator gives "
            f"every node a CPU of its own.")
        pre_prepares = c["messages_per_block_by_type"].get("pre-prepare", 0.0)
        self.resent = pre_prepares > 1.05 * (self.n - 1)  # PRE-PREPAREs sent again point to point
        self.resent_line = (
            f"The cluster's primaries sent {pre_prepares:,.1f} PRE-PREPARE copies per block, not n - 1 = "
            f"{self.n - 1}: a block stuck uncommitted for two sync ticks is sent again point to point, and the backups "
            f"broadcast their votes again (PBFT assumes retransmission). The simulator's blocks were not stuck.")
        self.disturbed = bool(self.resent or c.get("view_changes") or c.get("retries"))
        self.noise = []
        if c.get("retries"):
            self.noise.append(f"{c['retries']} client retries on the cluster (a request unanswered after "
                              f"{doc.get('retry_ms', 1000):.0f} ms is sent to every node), {s.get('retries', 0)} "
                              f"simulated.")
        if c.get("view_changes"):
            self.noise.append(f"The cluster changed view {c['view_changes']} time(s) during the load (timeouts on a "
                              f"busy machine), the simulator {s.get('view_changes', 0)}.")


def explain(doc: dict) -> dict[str, dict]:
    """Per metric: both values, their ratio, a verdict and the reasons, with the figures behind them."""
    facts = _Facts(doc)
    out = {"throughput_tps": _throughput(facts)}
    p50 = True
    for key, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        out[key] = _latency(facts, key, label, first=p50)
        p50 = p50 and out[key]["verdict"] == "agree"  # the first that differs says what they have in common
    out["messages_per_block"] = _messages(facts)
    out["bytes_per_block"] = _bytes(facts)
    c, s = facts.c, facts.s
    for key, _ in METRICS:
        verdict = out[key]
        noise = facts.noise if verdict["verdict"] != "agree" else []
        out[key] = {"cluster": c[key], "simulator": s[key], "ratio": _ratio(c[key], s[key]),
                    "verdict": verdict["verdict"], "why": verdict["why"] + noise}
    return out


def _throughput(f: _Facts) -> dict:
    c, s = f.c, f.s
    ratio = _ratio(c["throughput_tps"], s["throughput_tps"])
    ceiling = f.doc["ceiling"]["as_run"]
    if ratio is not None and abs(ratio - 1) <= THROUGHPUT_TOLERANCE:
        offered = min(c["send_rate_tps"], s["send_rate_tps"])
        if min(c["throughput_tps"], s["throughput_tps"]) >= 0.85 * offered:
            return {"verdict": "agree", "why": [
                f"Both carried the offered load (about {offered:,.0f} tx/s): below capacity throughput equals the "
                f"send rate, so this row does not test the model; offer more (--rate) to find capacity."]}
        return {"verdict": "agree", "why": ["Both fell short of the offered load by about as much."]}
    if ratio is not None and ratio < 1:
        why = [f.share_line, f.cpu_line]
        if f.shared:
            why.append(f"Charged the CPU measured per message, the simulator carries "
                       f"{f.measured['throughput_tps']:,.0f} tx/s with a CPU per node and "
                       f"{f.shared['throughput_tps']:,.0f} tx/s with the cores shared (costs x{f.shared['cpu_scale']:.1f})"
                       f", against the cluster's {c['throughput_tps']:,.0f}: how much of the gap the CPU model "
                       f"accounts for.")
        if f.fitted:
            why.append(f"With every CPU cost x{f.fitted['cpu_scale']:.1f} (fitted to the cluster's p50) it carries "
                       f"{f.fitted['throughput_tps']:,.0f} tx/s.")
        why.append(f"The signatures alone cap {f.cores} cores at {ceiling['max_tps']:,.0f} tx/s for blocks of "
                   f"{ceiling['block_tx']:.0f} transactions (the CPU-bound ceiling).")
        return {"verdict": "expected", "why": why}
    return {"verdict": "check", "why": [
        "The simulator predicts less throughput than the cluster carried: the model charges more than the real "
        "processes spend (the cpu: and network settings below), or it refused requests that would wait longer than "
        f"request_queue_ms = {f.doc['calibration']['cpu']['request_queue_ms']:g} ms on a node's request lane (a "
        "node process has no such limit), or the two workloads differ. Reality beating the model is a modelling "
        "bug to look into."]}


def _latency(f: _Facts, key: str, label: str, first: bool) -> dict:
    c, s = f.c, f.s
    cv, sv = c[key], s[key]
    rel, absolute = LATENCY_TOLERANCE
    if abs(cv - sv) <= max(absolute, rel * sv):
        return {"verdict": "agree", "why": [f"Within {rel:.0%} or {absolute:.0f} ms."]}
    if cv < sv:
        return {"verdict": "check", "why": [
            f"The simulated {label} is above the cluster's: the model charges more than reality. Check the settings "
            f"below (a bandwidth of {f.doc['simulator_settings']['network.bandwidth_mbps']:,.0f} Mbit/s charges each "
            f"broadcast's n - 1 copies on the sender's uplink, where the broker fans out) and the CPU costs."]}
    why = []
    if first:
        why += [f"The cluster's answer is a status notice through the broker to the load's watcher: one hop (about "
                f"{f.hop:.2f} ms idle) that the simulator's reply, counted when f + 1 nodes executed, does not take.",
                f"Each node makes three durable SQLite commits per block on the critical path (the accepted "
                f"PRE-PREPARE before its PREPARE, the prepared certificate before its COMMIT, the block before it "
                f"answers): about {3 * f.commit:.2f} ms at {f.commit:.2f} ms each here, not modelled."]
        if f.hop_loaded is not None:
            why.append(f"Under the load a broker hop took {f.hop_loaded:.2f} ms (p50) against {f.hop:.2f} ms idle; "
                       f"the simulator uses the idle figure for all five hops (request, forward, PRE-PREPARE, "
                       f"PREPARE, COMMIT).")
        why += [f.cpu_line, f.share_line]
    else:
        why.append("What makes the lower percentile differ (above), and:")
    if f.measured and f.shared:
        why.append(f"Charged the CPU measured per message (costs x{f.measured['cpu_scale']:.1f}), the simulator's "
                   f"{label} becomes {f.measured[key]:,.1f} ms with a CPU per node, and {f.shared[key]:,.1f} ms with "
                   f"every node process also waiting for all the others (x{f.shared['cpu_scale']:.1f}: too much when "
                   f"they are not all busy at once, too little for what else runs); the cluster's is {cv:,.1f} ms.")
    if f.fitted and first:
        contention = f.fitted["cpu_scale"] / f.measured["cpu_scale"]
        meets = "meets" if abs(f.fitted["p50_ms"] / c["p50_ms"] - 1) <= 0.10 else "comes nearest"
        why.append(f"The simulator {meets} the cluster's p50 ({f.fitted['p50_ms']:,.1f} ms) with every CPU cost "
                   f"x{f.fitted['cpu_scale']:.1f}: x{f.measured['cpu_scale']:.1f} is the per-message work measured, "
                   f"the other x{contention:.1f} the cores shared by {f.procs} processes, the broker, this load "
                   f"driver and other programs (x{f.procs / f.cores:.0f} if every node process were busy at once), "
                   f"the store's commits and the event loop's delays.")
        why.append(f"The block interval shows it: {c['ms_per_block']:,.1f} ms on the cluster against "
                   f"{s['ms_per_block']:,.1f} ms simulated. The primary proposes a block only when it has executed "
                   f"the one before, so a longer round makes bigger blocks ({c['tx_per_block']:.1f} against "
                   f"{s['tx_per_block']:.1f} tx) and longer waits for the next one."
                   + (" The cluster also fell behind the offered load, so requests queued."
                      if c["throughput_tps"] < 0.85 * c["send_rate_tps"] else ""))
    elif f.fitted:
        why.append(f"With the CPU fitted to the p50 (x{f.fitted['cpu_scale']:.1f}) the simulated {label} is "
                   f"{f.fitted[key]:,.1f} ms: " + ("the tail's shape agrees." if abs(f.fitted[key] / cv - 1) <= 0.25
                                                   else "the rest is the cluster's own tail."))
    if key != "p50_ms":
        why.append(f"Tails: the OS scheduler slices {f.procs} processes over {f.cores} cores (and other programs), "
                   f"garbage collection pauses and client retries stretch the cluster's; the simulator's tail comes "
                   f"only from Poisson bursts, batching and jitter.")
    return {"verdict": "expected", "why": why}


def _messages(f: _Facts) -> dict:
    c, s, n = f.c, f.s, f.n
    analytic = f.doc["analytic_messages_per_block"]
    ratio = _ratio(c["messages_per_block"], s["messages_per_block"])
    common = [f"Consensus messages (PRE-PREPARE, PREPARE, COMMIT, CHECKPOINT) as copies, one per receiver: the "
              f"cluster's broadcasts count n - 1 = {n - 1} times (the broker's fan-out), its point-to-point sends once. PBFT's count for "
              f"n = {n}: {analytic:,.0f}.",
              f"Not counted on either side: status notices ({c['status_notices_per_block']:,.1f} publishes per "
              f"block on the cluster, one per block each node executes and one a second; the simulator has none) "
              f"and client requests (the simulator counts the client's send, the cluster only a node's forward)."]
    if ratio is not None and abs(ratio - 1) <= COUNT_TOLERANCE:
        return {"verdict": "agree",
                "why": [f"The same replica code sends the same messages: within {COUNT_TOLERANCE:.0%}."] + common}
    ct, st = c["messages_per_block_by_type"], s["messages_per_block_by_type"]
    why = [("By type, cluster against simulator per block: "
            + ", ".join(f"{k} {ct.get(k, 0):,.1f} / {st.get(k, 0):,.1f}" for k in CONSENSUS_KINDS) + ".")]
    few = min(c["blocks"], s["blocks"]) < 10
    noisy = f.disturbed
    if few:
        why.append(f"Few blocks ({c['blocks']} on the cluster, {s['blocks']} simulated): messages of blocks in flight "
                   f"when the count starts and stops weigh in, and checkpoints come every "
                   f"{f.doc['checkpoint_interval']} blocks.")
    if f.resent:
        why.append(f.resent_line)
    if c.get("view_changes") or c.get("retries"):
        why.append("View changes (their VIEW-CHANGE and NEW-VIEW are not in this count, but the blocks re-proposed "
                   "in a new view are) and client retries send messages the normal case does not.")
    if not (few or noisy):
        why.append("A normal-case run with no view change and no retry sends the same consensus messages per block "
                   "on both sides: a difference is a counting or modelling bug.")
    return {"verdict": "expected" if (few or noisy) else "check", "why": why + common}


def _bytes(f: _Facts) -> dict:
    c, s = f.c, f.s
    ratio = _ratio(c["bytes_per_block"], s["bytes_per_block"])
    # A PRE-PREPARE grows by one request envelope per transaction (the simulator's mean request size).
    request = s["bytes_per_block_by_type"].get("request", 0.0) / max(1e-9, s["messages_per_block_by_type"].get(
        "request", 0.0))
    proposals = s["messages_per_block_by_type"].get("pre-prepare", 0.0)
    at_fill = s["bytes_per_block"] + proposals * request * (c["tx_per_block"] - s["tx_per_block"])
    fill = (f"The cluster's blocks held {c['tx_per_block']:.1f} transactions on average, the simulator's "
            f"{s['tx_per_block']:.1f}: a PRE-PREPARE carries its block's requests to n - 1 nodes, so bytes per block "
            f"follow block fill. At the cluster's fill the simulator's sizes give {at_fill:,.0f} bytes per block.")
    status = (f"Status notices add {c['status_bytes_per_block']:,.0f} bytes per block on the cluster (not counted "
              f"here).")
    if ratio is not None and abs(ratio - 1) <= BYTES_TOLERANCE:
        return {"verdict": "agree", "why": [f"Within {BYTES_TOLERANCE:.0%}.", fill, status]}
    if at_fill and abs(c["bytes_per_block"] / at_fill - 1) <= BYTES_TOLERANCE:
        return {"verdict": "expected", "why": [
            fill, f"The primary proposes a block only when it has executed the one before: the cluster's slower "
                  f"round ({c['ms_per_block']:,.1f} ms a block against {s['ms_per_block']:,.1f} ms simulated, see "
                  f"latency) gathers more requests per block.", status]}
    if f.resent or c.get("view_changes"):
        return {"verdict": "expected", "why": [fill] + ([f.resent_line] if f.resent else []) + [
            "Blocks re-proposed after a view change, PRE-PREPAREs sent again and the votes that follow them carry "
            "bytes the normal case does not.", status]}
    return {"verdict": "check", "why": [
        fill, "Neither block fill nor retransmissions explain the difference: the encodings or the counting "
              "differ.", status]}


# ---- outputs --------------------------------------------------------------------------------

SHORT = {VARIANT_MEASURED: "sim, measured CPU", VARIANT_FITTED: "sim, CPU fitted to p50",
         VARIANT_SHARED: "sim, measured CPU, shared"}


def sides(doc: dict) -> list[tuple[str, dict]]:
    return [("cluster", doc["cluster"]), ("simulator", doc["simulator"])] + list(doc["variants"].items())


def short(name: str) -> str:
    return SHORT.get(name, name)


def plot(doc: dict, path: Path) -> Path:
    """Four panels: throughput (with the CPU-bound ceiling), latency percentiles, messages
    and bytes per block (with PBFT's analytic message count)."""
    named = sides(doc)
    labels = [short(name) for name, _ in named]
    colours = ["#0969da", "#1a7f37", "#bf8700", "#8250df", "#cf222e"][:len(named)]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), dpi=100)
    title = (f"{doc['chain']}: n = {doc['nodes']}, {doc['transactions']} tx at {doc['rate_tps']:g} tx/s, "
             f"cluster against simulator")
    fig.suptitle(title)

    ax = axes[0][0]
    ax.bar(range(len(named)), [side["throughput_tps"] for _, side in named], color=colours)
    ceiling = doc["ceiling"]["as_run"]["max_tps"]
    top = max([side["throughput_tps"] for _, side in named] + [doc["rate_tps"]]) * 1.3
    ax.axhline(doc["rate_tps"], color="grey", linestyle=":", linewidth=1, label=f"offered: {doc['rate_tps']:g} tx/s")
    if ceiling <= 3 * top:  # else the bars would be slivers: the title says it
        ax.axhline(ceiling, color="black", linestyle="--", linewidth=1, label="CPU-bound ceiling")
        top = max(top, ceiling * 1.1)
    ax.set_title(f"throughput (tx/s); CPU-bound ceiling {ceiling:,.0f}")
    ax.set_ylim(0, top)
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[0][1]
    width = 0.8 / len(named)
    for i, (label, (_, side)) in enumerate(zip(labels, named)):
        ax.bar([j + i * width for j in range(3)], [side["p50_ms"], side["p95_ms"], side["p99_ms"]], width,
               color=colours[i], label=label)
    ax.set_xticks([j + width * (len(named) - 1) / 2 for j in range(3)], ["p50", "p95", "p99"])
    values = [side[k] for _, side in named for k in ("p50_ms", "p95_ms", "p99_ms") if side[k] > 0]
    logarithmic = values and max(values) > 20 * min(values)
    if logarithmic:
        ax.set_yscale("log")  # else the short bars vanish next to the long ones
    ax.set_title("latency (ms, submission to f + 1 executed)" + (", log scale" if logarithmic else ""))
    ax.legend(fontsize=8)

    ax = axes[1][0]
    ax.bar(range(len(named)), [side["messages_per_block"] for _, side in named], color=colours)
    ax.axhline(doc["analytic_messages_per_block"], color="black", linestyle="--", linewidth=1,
               label=f"PBFT analytic: {doc['analytic_messages_per_block']:,.0f}")
    ax.set_title("consensus messages per block (copies)")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    ax.bar(range(len(named)), [side["bytes_per_block"] / 1000 for _, side in named], color=colours)
    ax.set_title("consensus kB per block (copies)")
    for ax in (axes[0][0], axes[1][0], axes[1][1]):
        ax.set_xticks(range(len(named)), labels, fontsize=7, rotation=12)
    for row_ in axes:
        for ax in row_:
            ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(doc: dict, path: Path, png: Path) -> None:
    named = sides(doc)
    why = doc["differences"]
    e = html.escape
    main = [[e(label)] + [e(_fmt(side[key])) for _, side in named]
            + [e(_fmt(why[key]["ratio"])), f'<b class="{why[key]["verdict"]}">{e(why[key]["verdict"])}</b>']
            for key, label in METRICS]
    details = [[e(label)] + [e(_fmt(side.get(key))) for _, side in named] for key, label in DETAILS]
    kinds = sorted({k for _, side in named for k in side["messages_per_block_by_type"]})
    by_type = [[e(k)] + [e(_fmt(side["messages_per_block_by_type"].get(k, 0.0))) for _, side in named]
               for k in kinds]
    reasons = "".join(f"<h3>{e(label)}: {e(why[key]['verdict'])}</h3><ul>"
                      + "".join(f"<li>{e(line)}</li>" for line in why[key]["why"]) + "</ul>"
                      for key, label in METRICS)
    cal = doc["calibration"]
    broker = cal["broker"]
    calibration = [[e(k), e(_fmt(v))] for k, v in cal["cpu"].items()] + [
        ["storage commit (ms, WAL, synchronous=FULL)", e(_fmt(cal["storage_commit_ms"]))],
        ["broker one-way, idle (ms): p10 / p50 / p90",
         e(" / ".join(_fmt(broker["one_way_ms"][p]) for p in ("p10", "p50", "p90")))],
        ["broker one-way, under the load (ms): p10 / p50 / p90",
         e(" / ".join(_fmt(broker.get("one_way_under_load_ms", {}).get(p)) for p in ("p10", "p50", "p90")))],
        ["broker one-way, 64 KiB (ms, p50)", e(_fmt(broker["one_way_64KiB_ms"]["p50"]))],
        ["broker effective bandwidth (Mbit/s)", e(_fmt(broker["bandwidth_mbps"]))]]
    settings = [[e(k), e(json.dumps(v))] for k, v in doc["simulator_settings"].items()]
    ceilings = [[e(label)] + [e(_fmt(doc["ceiling"][which][k])) for which in ("full_blocks", "as_run")]
                for k, label in (("block_tx", "transactions per block"), ("signs_per_block", "signatures made per block"),
                                 ("verifies_per_block", "signatures checked per block"),
                                 ("signature_ms_per_block", "signature CPU per block (ms)"),
                                 ("max_tps", "max tx/s (signatures only)"),
                                 ("max_tps_with_execution", "max tx/s (with execution on every node)"))]
    resources = [[e(str(p["pid"])), e(",".join(p["nodes"])), e(_fmt(p["cpu_s"])), e(_fmt(p["cpu_percent"])),
                  e(_fmt(p["peak_rss_mib"]))] for p in doc["resources"]]
    image = base64.b64encode(png.read_bytes()).decode()
    meta = [[e(k), e(_fmt(doc[k]))] for k in ("scenario", "chain", "nodes", "f", "transactions", "rate_tps",
                                              "block_size", "batch_timeout_ms", "view_change_timeout_ms",
                                              "cores", "node_processes")]
    names = [e(name) for name, _ in named]
    title = f"citychain cluster compare: {doc['chain']}, n = {doc['nodes']}"
    path.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title><style>{STYLE}
.agree{{color:#1a7f37}}.expected{{color:#9a6700}}.check{{color:#cf222e}}h3{{font-size:1rem;margin-bottom:.2rem}}
</style></head>
<body>
<h1>{e(title)}</h1>
<p class="note">The same scenario on the running cluster (real node processes through Mosquitto) and in the
simulator, set up from this machine's measured costs and broker delays. The two "sim:" columns after the
prediction are diagnostics: the CPU model charged what the node processes really spent per message (one CPU per
node, then the cores shared); they use the cluster's own figures, so they explain, they do not predict.
Verdicts: <b class="agree">agree</b> within tolerance; <b class="expected">expected</b>: the difference is what the
simulator leaves out; <b class="check">check</b>: not explained by that, look for a modelling or counting bug.</p>
{_table(["", ""], meta)}
<h2>Side by side</h2>
{_table(["metric"] + names + ["cluster / simulator", "verdict"], main)}
<h2>Why they differ</h2>
{reasons}
<h2>Plots</h2><div class="plots"><img style="max-width:100%" alt="cluster against simulator"
src="data:image/png;base64,{image}"></div>
<h2>More figures</h2>
{_table(["figure"] + names, details)}
<h2>Messages per block by type (copies, one per receiver)</h2>
{_table(["type"] + names, by_type)}
<h2>CPU-bound ceiling ({doc['cores']} cores, PBFT normal case, n = {doc['nodes']})</h2>
<p class="note">Signatures made and checked per block over all nodes, times their cost measured here, over the
machine's cores: every request is checked once by every node, each PREPARE, COMMIT and CHECKPOINT by the n - 1
others.</p>
{_table(["", "full blocks", "blocks as the cluster made them"], ceilings)}
<h2>Calibration (measured on this machine just before the load)</h2>
{_table(["", ""], calibration)}
<h2>Simulator settings</h2>
{_table(["field", "value"], settings)}
<h2>Node processes during the load</h2>
{_table(["pid", "nodes", "CPU s", "CPU %", "peak MiB"], resources)}
</body></html>
""", encoding="utf-8")


def run_compare(cluster, spec, source: str, out: Path, progress=None, say=lambda text: None) -> tuple[dict, dict]:
    """Measure, load, simulate, explain; write the files. The document and the files' paths."""
    doc = compare(cluster, spec, source, progress, say)
    doc["differences"] = explain(doc)
    return doc, write_outputs(doc, out)


def write_outputs(doc: dict, out: Path) -> dict[str, Path]:
    """compare.json, compare.png and compare.html in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    png = plot(doc, out / "compare.png")
    (out / "compare.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_html(doc, out / "compare.html", png)
    return {"json": out / "compare.json", "png": png, "html": out / "compare.html"}


def print_table(doc: dict, console) -> None:
    from rich.table import Table

    named = sides(doc)
    why = doc["differences"]
    table = Table(title=f"{doc['chain']}: n = {doc['nodes']}, {doc['transactions']} tx at {doc['rate_tps']:g} tx/s")
    table.add_column("metric")
    for name, _ in named:
        table.add_column(short(name), justify="right")
    table.add_column("verdict")
    for key, label in METRICS + DETAILS:
        verdict = why[key]["verdict"] if key in why else ""
        table.add_row(label, *[_fmt(side.get(key)) for _, side in named], verdict)
    console.print(table)
    ceiling = doc["ceiling"]
    console.print(f"CPU-bound ceiling on {doc['cores']} cores: {ceiling['full_blocks']['max_tps']:,.0f} tx/s with full "
                  f"blocks of {ceiling['full_blocks']['block_tx']:.0f}, {ceiling['as_run']['max_tps']:,.0f} tx/s with "
                  f"the cluster's blocks of {ceiling['as_run']['block_tx']:.1f} (signatures only)")
    for key, label in METRICS:
        if why[key]["verdict"] != "agree":
            console.print(f"[bold]{label}[/bold] ({why[key]['verdict']}):")
            for line in why[key]["why"]:
                console.print(f"  - {line}", highlight=False)
