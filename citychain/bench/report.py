"""The sweep's HTML report: one self-contained file (plots inlined) to open anywhere."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from .plots import _series
from .sweep import analytic_messages_per_block, consensus_per_block, fit_quadratic

COLUMNS = [("nodes", "n"), ("seeds", "seeds"), ("submitted", "submitted"), ("succ", "succ"),
           ("fail_refused", "fail: refused by app"), ("fail_uncommitted", "fail: never committed"),
           ("send_rate_tps", "send rate (tx/s, virtual)"), ("throughput_tps", "throughput (succ tx/s, virtual)"),
           ("min_latency_ms", "min (ms, virtual)"), ("avg_latency_ms", "avg (ms, virtual)"),
           ("max_latency_ms", "max (ms, virtual)"), ("p50_ms", "p50 (ms, virtual)"), ("p95_ms", "p95 (ms, virtual)"),
           ("p99_ms", "p99 (ms, virtual)"), ("blocks", "blocks"),
           ("consensus_messages_per_block", "msgs/block: consensus"),
           ("consensus_and_request_messages_per_block", "msgs/block: consensus + requests"),
           ("messages_per_block", "msgs/block: all"), ("bytes_per_block", "bytes/block"),
           ("view_changes", "view changes"), ("cpu_s_per_node", "CPU s/node (modelled, virtual)"),
           ("bandwidth_mbps_per_node", "Mbit/s per node (virtual)"),
           ("wall_seconds", "simulator wall-clock s (per run)")]

CAPACITY_COLUMNS = [("nodes", "n"), ("capacity_tps", "capacity (succ tx/s, virtual)"),
                    ("capacity_offered_tps", "highest offered rate that held (tx/s, virtual)"),
                    ("capacity_p50_ms", "p50 there (ms, virtual)"), ("capacity_p95_ms", "p95 there (ms, virtual)"),
                    ("first_failing_offered_tps", "lowest offered rate that failed (tx/s, virtual)"),
                    ("first_failing_reason", "why it failed"), ("probes", "probes"),
                    ("wall_seconds", "simulator wall-clock s (all probes)")]

PROBE_COLUMNS = [("nodes", "n"), ("step", "step"), ("offered_tps", "offered (tx/s, virtual)"),
                 ("submitted", "submitted"), ("send_rate_tps", "send rate (tx/s, virtual)"),
                 ("reply_rate_tps", "reply rate (tx/s, virtual)"), ("throughput_tps", "throughput (succ tx/s, virtual)"),
                 ("fail_uncommitted", "never committed"), ("p95_ms", "p95 (ms, virtual)"), ("holds", "holds"),
                 ("why_not", "why not")]

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1b1f24;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:right}th{background:#f6f8fa}
td:first-child,th:first-child{text-align:left}
.sd{color:#6e7781;font-size:.75rem}.plots img{max-width:48%;margin:.5%;border:1px solid #d0d7de}
.note{color:#57606a;font-size:.85rem}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:.5rem}
.plots img{width:100%;max-width:none;margin:0}
pre{background:#f6f8fa;padding:.5rem;font-size:.75rem;overflow:auto;max-height:30rem}
td.left{text-align:left;white-space:pre-wrap}
.wide{overflow-x:auto}
.plots.single{grid-template-columns:minmax(420px,760px)}
"""


def _cell(row: dict, key: str) -> str:
    value = row.get(key, "")
    sd = row.get(f"{key}.sd")
    if isinstance(value, float):  # a mean of whole counts stays whole: 1,000 not 1,000.00
        text = f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    else:
        text = html.escape(str(value))
    if sd:
        text += f' <span class="sd">±{sd:,.2f}</span>'
    return text


def _table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in cols)
    body = "".join("<tr>" + "".join(
        f'<td class="left">{_cell(r, k)}</td>' if isinstance(r.get(k), str) and len(r.get(k, "")) > 12
        else f"<td>{_cell(r, k)}</td>" for k, _ in cols) + "</tr>" for r in rows)
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def _provenance(prov: dict) -> str:
    """What produced the report: command, version and commit, date, CPU costs, machine,
    and the scenario itself (effective YAML, defaults included)."""
    rows = "".join(f'<tr><th>{html.escape(k)}</th><td class="left">{html.escape(str(v))}</td></tr>'
                   for k, v in prov.items() if k != "scenario YAML")
    return (f'<h2>What produced this report</h2><table class="provenance">{rows}</table>'
            f'<details><summary>Scenario YAML (effective, defaults included)</summary>'
            f'<pre class="scenario-yaml">{html.escape(prov.get("scenario YAML", ""))}</pre></details>')


def _images(plots: list[Path]) -> str:
    return "".join(
        f'<img alt="{html.escape(p.stem)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        for p in plots)


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
{body}
</body></html>
"""


def _meta(meta: dict) -> str:
    return "<table>" + "".join(f'<tr><th>{html.escape(str(k))}</th><td class="left">{html.escape(str(v))}</td></tr>'
                               for k, v in meta.items()) + "</table>"


DEFINITIONS = """<p class="note">Every figure is in <b>virtual time</b> (the simulated clock: what a deployment
with the modelled network and CPU costs would see) except the simulator's wall-clock seconds.
As in Hyperledger Caliper, <b>throughput counts successful transactions</b> (committed and accepted by
their app) from the first submission until the last reply quorum; <b>fail</b> is split into refused by the
application (committed, but the app said no) and never committed (refused by a node, e.g. overloaded, or
lost). Latency: from submission until f+1 nodes executed the transaction. Messages per block are copies
sent (one per receiver): consensus alone (pre-prepare, prepare, commit, checkpoint, view change), with the
client requests forwarded between nodes, and all (state-transfer polling too).</p>"""


def write_report(path: Path, title: str, prov: dict, meta: dict, agg: list[dict], param_keys: list[str],
                 checkpoint_interval: int, plots: list[Path]) -> None:
    cols = [(k, k) for k in param_keys] + COLUMNS
    msg_rows = "".join(
        f"<tr><td>{r['nodes']}</td>" + "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in param_keys)
        + f"<td>{consensus_per_block(r):,.1f}</td><td>{analytic_messages_per_block(r['nodes'], checkpoint_interval):,.1f}</td>"
        + f"<td>{r['consensus_and_request_messages_per_block']:,.1f}</td>"
        + "".join(f"<td>{r.get(f'msgs_per_block.{k}', 0):,.1f}</td>" for k in ("pre-prepare", "prepare", "commit",
                                                                               "checkpoint", "request"))
        + "</tr>" for r in agg)
    fits = []
    for label, rs in _series(agg, param_keys).items():
        fit = fit_quadratic([r["nodes"] for r in rs], [consensus_per_block(r) for r in rs])
        if fit:
            a, b, c, rms = fit
            fits.append(f"<li>{html.escape(label)}: {a:.3f}n² {b:+.2f}n {c:+.1f}, RMS residual {rms:.2f} "
                        f"messages per block over {len(rs)} node counts</li>")
    fit_text = (f"<p>Least-squares quadratic fit of consensus messages per block:</p><ul>{''.join(fits)}</ul>"
                if fits else '<p class="note">No fitted curve: a quadratic has 3 parameters, so it is fitted '
                'only to more than 3 node counts.</p>')
    body = f"""{_meta(meta)}
<h2>Results (mean over seeds, ± sample standard deviation)</h2>
{DEFINITIONS}
{_table(agg, cols)}
<h2>Messages per block: measured against PBFT's analytic count</h2>
<table><tr><th>n</th>{''.join(f'<th>{html.escape(k)}</th>' for k in param_keys)}<th>consensus (measured)</th>
<th>analytic</th><th>consensus + client requests</th><th>pre-prepare</th><th>prepare</th><th>commit</th>
<th>checkpoint</th><th>request</th></tr>{msg_rows}</table>
{fit_text}
<h2>Plots</h2><div class="plots">{_images(plots)}</div>
{_provenance(prov)}"""
    path.write_text(_page(title, body), encoding="utf-8")


def write_capacity_report(path: Path, title: str, prov: dict, meta: dict, summary: list[dict], probes: list[dict],
                          plot: Path) -> None:
    body = f"""{_meta(meta)}
<h2>Capacity per node count</h2>
<p class="note">The capacity is the throughput (successful tx per virtual second, Caliper's definition) at
the highest offered rate that met the criterion: replies keep up with the load (reply rate, first to
last reply quorum, at least 95 % of the send rate), at least 95 % of the submitted transactions
committed, and p95 latency within the bound. All rates and latencies are virtual time.</p>
{_table(summary, CAPACITY_COLUMNS)}
<div class="plots single">{_images([plot])}</div>
<h2>Every probe, in the order made</h2>
{_table(probes, PROBE_COLUMNS)}
{_provenance(prov)}"""
    path.write_text(_page(title, body), encoding="utf-8")
