"""The sweep's HTML report: one self-contained file (plots inlined) to open anywhere."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from .sweep import analytic_messages_per_block, consensus_per_block

COLUMNS = [("nodes", "n"), ("seeds", "seeds"), ("succ", "succ"), ("fail", "fail"), ("send_rate_tps", "send rate (tx/s)"),
           ("throughput_tps", "throughput (tx/s)"), ("min_latency_ms", "min (ms)"), ("avg_latency_ms", "avg (ms)"),
           ("max_latency_ms", "max (ms)"), ("p50_ms", "p50 (ms)"), ("p95_ms", "p95 (ms)"), ("p99_ms", "p99 (ms)"),
           ("blocks", "blocks"), ("messages_per_block", "msgs/block"), ("bytes_per_block", "bytes/block"),
           ("view_changes", "view changes"), ("cpu_s_per_node", "CPU s/node"),
           ("bandwidth_mbps_per_node", "Mbit/s per node"), ("wall_seconds", "sim wall s")]

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1b1f24;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:right}th{background:#f6f8fa}
td:first-child,th:first-child{text-align:left}
.sd{color:#6e7781;font-size:.75rem}.plots img{max-width:48%;margin:.5%;border:1px solid #d0d7de}
.note{color:#57606a;font-size:.85rem}
"""


def _cell(row: dict, key: str) -> str:
    value = row.get(key, "")
    sd = row.get(f"{key}.sd")
    text = f"{value:,.2f}" if isinstance(value, float) else html.escape(str(value))
    if sd:
        text += f' <span class="sd">±{sd:,.2f}</span>'
    return text


def write_report(path: Path, title: str, meta: dict, agg: list[dict], param_keys: list[str],
                 checkpoint_interval: int, plots: list[Path]) -> None:
    cols = [(k, k) for k in param_keys] + COLUMNS
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in cols)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r, k)}</td>" for k, _ in cols) + "</tr>" for r in agg)
    msg_rows = "".join(
        f"<tr><td>{r['nodes']}</td>" + "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in param_keys)
        + f"<td>{consensus_per_block(r):,.1f}</td><td>{analytic_messages_per_block(r['nodes'], checkpoint_interval):,.1f}</td>"
        + "".join(f"<td>{r.get(f'msgs_per_block.{k}', 0):,.1f}</td>" for k in ("pre-prepare", "prepare", "commit",
                                                                               "checkpoint", "request"))
        + "</tr>" for r in agg)
    images = "".join(
        f'<img alt="{html.escape(p.stem)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        for p in plots)
    meta_rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items())
    path.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<table>{meta_rows}</table>
<h2>Results (mean over seeds, ± sample standard deviation)</h2>
<p class="note">succ/fail as in Hyperledger Caliper: committed and accepted by the app / refused or never committed.
Latency: from submission until f+1 nodes executed the transaction. Throughput and latency are virtual time;
"sim wall s" is the simulator's own time.</p>
<table><tr>{head}</tr>{body}</table>
<h2>Messages per block: measured against PBFT's analytic count</h2>
<table><tr><th>n</th>{''.join(f'<th>{html.escape(k)}</th>' for k in param_keys)}<th>consensus (measured)</th>
<th>analytic</th><th>pre-prepare</th><th>prepare</th><th>commit</th><th>checkpoint</th><th>request</th></tr>{msg_rows}</table>
<h2>Plots</h2><div class="plots">{images}</div>
</body></html>
""", encoding="utf-8")
