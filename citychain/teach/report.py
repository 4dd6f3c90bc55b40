"""report.html: one self-contained page per recorded run, with a step-through timeline.

The page holds the summary, the pictures the run wrote (inlined as data URIs), and the
events of a window of the run as JSON, which a small hand-written script replays: play,
pause, one step forward or back, scrub; for the moment shown each node's view, phase of
the block in flight, watermarks and log size, and a sequence view (a lane per node)
with the message being delivered highlighted. Nothing is fetched: no external script,
style, font or image, so it opens offline from a file:// URL.

A *step* is one event a student follows: a copy delivered, a message refused, a phase
change (proposed, pre-prepared, prepared, committed-local, executed, view change started,
view installed, checkpoint stable) or a fault. The sends, timers and replica-state
changes that follow a step belong to it. ``state_at`` replays exactly what the page's
script replays, so tests compare the two.

A large run's page covers a window (``choose_window``): ``--report-window START_MS:END_MS``,
or by default ``WINDOW_EVENTS`` events from a little before the first view change (for
``citychain trace``: before the instance drawn), or from the start of the run.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from ..sim.trace import Trace

WINDOW_EVENTS = 4000  # events on the page when the run is larger and no window is chosen
MAX_EVENTS = 40000  # an explicit window is cut here (the page would get slow and heavy)
STEP_KINDS = frozenset({"deliver", "drop", "fault", "proposed", "pre-prepared", "prepared", "committed-local",
                        "executed", "view-change-started", "view-installed", "checkpoint-stable"})
PHASES = {"proposed": "proposed", "pre-prepared": "pre-prepared", "prepared": "prepared",
          "committed-local": "committed", "executed": "executed"}
RANK = {"proposed": 1, "pre-prepared": 2, "prepared": 3, "committed": 4, "executed": 5}


class WindowError(ValueError):
    """A --report-window that cannot be read."""


def parse_window(text: str | None) -> tuple[float | None, float | None] | None:
    """``START_MS:END_MS`` (either side may be empty) as milliseconds."""
    if not text:
        return None
    start, sep, end = text.partition(":")
    if not sep:
        raise WindowError(f"--report-window {text!r}: expected START_MS:END_MS, e.g. 0:500 or 1200:")
    try:
        a = float(start) if start.strip() else None
        b = float(end) if end.strip() else None
    except ValueError:
        raise WindowError(f"--report-window {text!r}: START_MS and END_MS are numbers of milliseconds") from None
    if a is not None and b is not None and b < a:
        raise WindowError(f"--report-window {text!r}: END_MS is before START_MS")
    return a, b


def choose_window(trace: Trace, window=None, around_ns: int | None = None) -> tuple[int, int, str]:
    """The slice ``events[lo:hi]`` the page shows, and a sentence saying which part of the run it is."""
    events = trace.events
    total = len(events)
    if window is not None:
        a, b = window
        lo = next((k for k, e in enumerate(events) if a is None or e["t"] >= a * 1e6), total)
        hi = next((k for k, e in enumerate(events) if b is not None and e["t"] > b * 1e6), total)
        note = f"the window chosen with --report-window ({_ms_or(a, 'start')} to {_ms_or(b, 'end')})"
        if hi - lo > MAX_EVENTS:
            hi = lo + MAX_EVENTS
            note += f", cut to its first {MAX_EVENTS} events"
        return lo, hi, note
    if total <= WINDOW_EVENTS:
        return 0, total, "the whole run"
    if around_ns is None:
        vc = next((e for e in events if e["ev"] == "view-change-started"), None)
        around_ns = vc["t"] if vc else None
        what = "the first view change"
    else:
        what = "the instance drawn"
    if around_ns is None:
        lo, what = 0, "the first blocks"
    else:
        first = next((k for k, e in enumerate(events) if e["t"] >= around_ns), 0)
        lo = max(0, first - WINDOW_EVENTS // 5)
    hi = min(total, lo + WINDOW_EVENTS)
    return lo, hi, (f"{hi - lo} of the run's {total} events around {what}; choose another part with "
                    "--report-window START_MS:END_MS")


def _ms_or(v, word):
    return word if v is None else f"{v:g} ms"


# ---- the replay (the page's script does the same, in the same order) -----------------

def initial_state(header: dict) -> dict:
    window = header.get("watermark_window", 0)
    byz = header.get("byzantine", {})
    return {"nodes": {n: {"status": "up", "view": 0, "active": True, "low": 0, "high": window, "log": 0,
                          "seq": None, "phase": "idle", "executed": 0, "vc": None, "stable": 0,
                          "byzantine": byz.get(n)} for n in header["nodes"]},
            "network": "connected"}


def apply(state: dict, e: dict) -> None:
    """One event into the state (the twin of ``apply`` in the page's script)."""
    ev = e["ev"]
    nodes = state["nodes"]
    if ev == "fault":
        node = nodes.get(e.get("target"))
        action = e["action"]
        if node is not None and action in ("crash", "recover", "pause", "resume"):
            node["status"] = {"crash": "down", "recover": "up", "pause": "paused", "resume": "up"}[action]
        elif action in ("partition", "cut"):
            state["network"] = e["text"]
        elif action == "heal":
            state["network"] = "connected"
        return
    node = nodes.get(e.get("node"))
    if node is None:
        return
    if ev == "state":
        node.update(low=e["low"], high=e["high"], log=e["log"], view=e["view"], active=e["active"])
    elif ev in PHASES:
        phase = PHASES[ev]
        seq = e["seq"]
        if ev == "executed":
            node["executed"] = max(node["executed"], seq)
        if node["seq"] is None or seq > node["seq"] or (seq == node["seq"] and RANK[phase] > RANK.get(node["phase"], 0)):
            node["seq"], node["phase"] = seq, phase
    elif ev == "view-change-started":
        node["vc"] = e["view"]
    elif ev == "view-installed":
        node["view"], node["vc"], node["active"] = e["view"], None, True
    elif ev == "checkpoint-stable":
        node["stable"] = max(node["stable"], e["seq"])


def steps_of(events: list[dict]) -> list[int]:
    """Positions (in ``events``) of the events that are steps."""
    return [k for k, e in enumerate(events) if e["ev"] in STEP_KINDS]


def state_at(trace: Trace, lo: int, hi: int, step: int) -> dict:
    """The state the page shows at ``step`` (0: before the first step of the window)."""
    state = initial_state(trace.header)
    for e in trace.events[:lo]:
        apply(state, e)
    window = trace.events[lo:hi]
    marks = steps_of(window)
    end = (marks[step] if step < len(marks) else len(window)) if marks else len(window)
    for e in window[:end]:
        apply(state, e)
    return state


# ---- the page ------------------------------------------------------------------------

SUMMARY_ROWS = [
    ("scenario", lambda s: f"{s['scenario']} ({s['chain_id']}), seed {s['seed']}"),
    ("nodes", lambda s: f"n = {s['nodes']}, f = {s['f']}, quorum q = {s['quorum']}"),
    ("transactions submitted / committed / rejected by apps",
     lambda s: f"{s['submitted_tx']} / {s['committed_tx']} / {s['rejected_tx']}"),
    ("blocks", lambda s: s["blocks"]),
    ("throughput (tx/s, virtual)", lambda s: f"{s['tps']:.1f}"),
    ("latency p50 / p99 / max (ms)",
     lambda s: f"{s['latency_ms']['p50']:.2f} / {s['latency_ms']['p99']:.2f} / {s['latency_ms']['max']:.2f}"),
    ("messages", lambda s: _messages(s["messages"])),
    ("equivocation seen", lambda s: _equivocation(s.get("equivocation"))),
    ("messages refused (by reason)", lambda s: ", ".join(f"{k} {v}" for k, v in s["dropped"].items()) or "none"),
    ("view changes", lambda s: s["view_changes"]),
    ("faulty nodes", lambda s: ", ".join(s["faulty_nodes"]) or "none"),
    ("faults", lambda s: "; ".join(f"{f['at_ms']:.0f} ms {f['event']}" for f in s["faults"]) or "none"),
    ("liveness", lambda s: ("ok" if s["liveness"]["ok"] else "FAILED")
     + (f": {s['liveness']['reason']}" if s["liveness"].get("reason") else "")),
    ("agreement / safety violations", lambda s: f"{'yes' if s['agreement'] else 'NO'} / {s['safety_violations']}"),
    ("head", lambda s: f"#{s['head']['height']} {s['head']['hash'][:16]}"),
]


def _messages(m: dict) -> str:
    text = f"{m['total']:,} in all"
    if "consensus" in m:
        text += (f"; consensus {m['consensus']:,}, background (state transfer: fetch/blocks) {m['background']:,}, "
                 f"client requests {m.get('client', 0):,}")
    return text + " (" + ", ".join(f"{k} {v}" for k, v in m["by_type"].items()) + ")"


def _equivocation(eq: dict | None) -> str:
    if not eq or not (eq["conflicting_pre_prepares"] or eq["refused_as_conflicting"]):
        return "none"
    return (f"{eq['conflicting_pre_prepares']} (view, seq) with two or more blocks from one primary"
            + (f" ({', '.join(eq['equivocators'])})" if eq.get("equivocators") else "")
            + f"; {eq['refused_as_conflicting']} conflicting PRE-PREPAREs refused by the nodes")


def _summary_html(summary: dict | None) -> str:
    if not summary:
        return "<p class=note>No summary for this run.</p>"
    rows = []
    for label, get in SUMMARY_ROWS:
        try:
            value = get(summary)
        except (KeyError, TypeError):
            continue
        rows.append(f"<tr><th>{html.escape(label)}</th><td>{html.escape(str(value))}</td></tr>")
    full = html.escape(json.dumps(summary, indent=2))
    return (f"<table class=summary>{''.join(rows)}</table>"
            f"<details><summary>summary.json</summary><pre>{full}</pre></details>")


def _images(images: list[Path]) -> str:
    out = []
    for p in images:
        data = base64.b64encode(p.read_bytes()).decode()
        out.append(f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,{data}">'
                   f"<figcaption>{html.escape(p.name)}</figcaption></figure>")
    return "".join(out) or "<p class=note>No pictures.</p>"


def pictures(directory: Path) -> list[Path]:
    """The PNGs of a trace or export directory: diagrams first, then replica state."""
    pngs = sorted(directory.glob("*.png"))
    return [p for p in pngs if p.name != "replica-state.png"] + [p for p in pngs if p.name == "replica-state.png"]


def _json_for_script(value) -> str:
    # Inside <script type="application/json">: no "</" may end the element early.
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


def render(summary: dict | None, trace: Trace | None, images: list[Path], window=None,
           around_ns: int | None = None, title: str | None = None) -> str:
    name = (summary or {}).get("scenario") or (trace.header.get("scenario") if trace else "") or "run"
    title = title or f"citychain: {name}"
    if trace is not None and trace.events:
        lo, hi, note = choose_window(trace, window, around_ns)
        init = initial_state(trace.header)
        for e in trace.events[:lo]:
            apply(init, e)
        data = {"header": trace.header, "init": init, "events": trace.events[lo:hi], "note": note,
                "total": len(trace.events)}
        timeline = TIMELINE.replace("%NOTE%", html.escape(note))
        script = (f'<script type="application/json" id="trace-data">{_json_for_script(data)}</script>'
                  f"<script>{SCRIPT}</script>")
    else:
        timeline = ("<p class=note>This run was not recorded (<code>--no-trace</code>), so there is no "
                    "timeline: run it again without <code>--no-trace</code>.</p>")
        script = ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<nav><a href="#timeline">timeline</a> · <a href="#summary">summary</a> · <a href="#pictures">pictures</a></nav>
<h2 id="timeline">Step through the run</h2>
{timeline}
<h2 id="summary">Summary</h2>
{_summary_html(summary)}
<h2 id="pictures">Pictures</h2>
<p class=note>The sequence diagrams (<code>citychain trace --block H</code> or <code>--view-change N</code>) and
replica state over time: low watermark h (solid), high watermark H (dashed), log size (garbage collection at each
stable checkpoint). docs/teaching.md explains every mark.</p>
<div class=pictures>{_images(images)}</div>
{script}
</body></html>
"""


def write_report(path: Path, summary: dict | None, trace: Trace | None, images: list[Path] | None = None,
                 window=None, around_ns: int | None = None, title: str | None = None) -> Path:
    """Write the page to ``path`` (images default to the PNGs beside it)."""
    path = Path(path)
    if images is None:
        images = pictures(path.parent)
    path.write_text(render(summary, trace, images, window, around_ns, title), encoding="utf-8")
    return path


STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.2rem 2rem;color:#1b1f24;max-width:1400px}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin-top:1.6rem}
nav{font-size:.85rem}a{color:#0969da}
.note{color:#57606a;font-size:.85rem}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
table.summary th{width:22rem}
#controls{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.4rem 0}
#controls button{font-size:1rem;min-width:2.4rem;padding:.2rem .5rem;cursor:pointer}
#scrub{flex:1;min-width:300px}
#now{font-family:ui-monospace,monospace;font-size:.9rem;background:#fff8c5;padding:.35rem .6rem;border:1px solid #d4a72c;
 border-radius:4px;margin:.3rem 0;min-height:1.3rem}
#seq{border:1px solid #d0d7de;width:100%;display:block;background:#fff}
#nodes td.phase-committed,#nodes td.phase-executed{background:#dafbe1}
#nodes td.phase-prepared{background:#fff1e5}#nodes td.phase-pre-prepared,#nodes td.phase-proposed{background:#ddf4ff}
#nodes tr.down td{color:#999;text-decoration:line-through}#nodes tr.byz td:first-child{color:#cf222e;font-weight:600}
#nodes tr.hit td{outline:2px solid #d4a72c}
#log{font-family:ui-monospace,monospace;font-size:.78rem;max-height:14rem;overflow:auto;border:1px solid #d0d7de;
 padding:.3rem;margin:.3rem 0;white-space:pre}
#log .cur{background:#fff8c5;font-weight:600}
.cols{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1rem}
.pictures figure{margin:.5rem 0}.pictures img{max-width:100%;border:1px solid #d0d7de}
figcaption{font-size:.8rem;color:#57606a}
pre{font-size:.75rem;overflow:auto}
.legend span{display:inline-block;margin-right:.8rem;font-size:.8rem}
.legend i{display:inline-block;width:1.4rem;height:.25rem;vertical-align:middle;margin-right:.25rem}
"""

TIMELINE = """
<p class=note>This page covers %NOTE%. A <b>step</b> is one message delivered or refused, a phase change or a
fault; keys: ← → step, space play/pause, Home/End.</p>
<div id=controls>
 <button id=first title="first step">◀◀</button><button id=back title="one step back">◀</button>
 <button id=play title="play / pause">▶ play</button><button id=fwd title="one step forward">▶▏</button>
 <button id=last title="last step">▶▶</button>
 <input id=scrub type=range min=0 max=0 value=0 aria-label="scrub">
 <span id=pos class=note></span>
 <label class=note>speed <select id=speed><option value=2>2</option><option value=5 selected>5</option>
 <option value=15>15</option><option value=50>50</option></select> steps/s</label>
</div>
<div id=now></div>
<canvas id=seq height=300></canvas>
<div class=legend id=legend></div>
<div class=cols>
 <div><table id=nodes></table><p class=note id=net></p></div>
 <div><div class=note>Steps so far (the current one highlighted):</div><div id=log></div></div>
</div>
<pre id=selftest hidden></pre>
"""

SCRIPT = r"""
(function(){
"use strict";
var errors=[];
window.addEventListener("error",function(e){errors.push(String(e.message||e));});
var D=JSON.parse(document.getElementById("trace-data").textContent);
var H=D.header, E=D.events, NODES=H.nodes, N=NODES.length;
var STEP={"deliver":1,"drop":1,"fault":1,"proposed":1,"pre-prepared":1,"prepared":1,"committed-local":1,
 "executed":1,"view-change-started":1,"view-installed":1,"checkpoint-stable":1};
var PH={"proposed":"proposed","pre-prepared":"pre-prepared","prepared":"prepared","committed-local":"committed",
 "executed":"executed"};
var RANK={"proposed":1,"pre-prepared":2,"prepared":3,"committed":4,"executed":5};
var COL={"request":"#9e9e9e","pre-prepare":"#1f77b4","prepare":"#ff7f0e","commit":"#2ca02c","checkpoint":"#9467bd",
 "view-change":"#d62728","new-view":"#8c564b","new-view-request":"#e377c2","fetch":"#7f7f7f","blocks":"#bcbd22"};
var NAME={"pre-prepare":"PRE-PREPARE","prepare":"PREPARE","commit":"COMMIT","checkpoint":"CHECKPOINT",
 "view-change":"VIEW-CHANGE","new-view":"NEW-VIEW","new-view-request":"NEW-VIEW-REQUEST","request":"REQUEST",
 "fetch":"FETCH","blocks":"BLOCKS"};
var marks=[]; // positions in E of the steps
var stepOf=new Array(E.length); // the step each event belongs to (0: before the first step)
for(var k=0,s=0;k<E.length;k++){ if(STEP[E[k].ev]){marks.push(k);s=marks.length;} stepOf[k]=s; }
var S=marks.length; // steps 1..S; step 0 = the window's start
// copies: each send paired with its arrival (same msg and receiver, in order)
var copies=[], waiting={};
for(var k=0;k<E.length;k++){var e=E[k];
 if(e.ev==="send"){var c={src:e.from,dst:e.to,kind:e.kind,sent:k,arr:null,lost:e.lost,e:e};copies.push(c);
  if(e.lost===null){var key=e.msg+">"+e.to;(waiting[key]=waiting[key]||[]).push(c);}}
 else if(e.ev==="deliver"){var key=e.msg+">"+e.to,q=waiting[key];
  if(q&&q.length){q.shift().arr=k;} else copies.push({src:e.from,dst:e.to,kind:e.kind,sent:null,arr:k,lost:null,e:e});}}
var byArr={}; copies.forEach(function(c){if(c.arr!==null)byArr[c.arr]=c;});
function clone(o){return JSON.parse(JSON.stringify(o));}
function apply(st,e){
 var ev=e.ev, nodes=st.nodes, node;
 if(ev==="fault"){node=nodes[e.target];var a=e.action;
  if(node&&(a==="crash"||a==="recover"||a==="pause"||a==="resume"))
   node.status={"crash":"down","recover":"up","pause":"paused","resume":"up"}[a];
  else if(a==="partition"||a==="cut") st.network=e.text; else if(a==="heal") st.network="connected";
  return;}
 node=nodes[e.node]; if(!node) return;
 if(ev==="state"){node.low=e.low;node.high=e.high;node.log=e.log;node.view=e.view;node.active=e.active;}
 else if(PH[ev]){var ph=PH[ev],seq=e.seq;
  if(ev==="executed") node.executed=Math.max(node.executed,seq);
  if(node.seq===null||seq>node.seq||(seq===node.seq&&RANK[ph]>(RANK[node.phase]||0))){node.seq=seq;node.phase=ph;}}
 else if(ev==="view-change-started") node.vc=e.view;
 else if(ev==="view-installed"){node.view=e.view;node.vc=null;node.active=true;}
 else if(ev==="checkpoint-stable") node.stable=Math.max(node.stable,e.seq);
}
// snapshots every 200 steps keep scrubbing fast on long windows
var SNAP=200, snaps=[];
(function(){var st=clone(D.init),k=0;
 for(var s=0;s<=S;s++){var end=s<S?marks[s]:E.length;
  if(s%SNAP===0) snaps.push({k:k,st:clone(st)}); // state at step s, before applying events from k
  for(;k<end;k++) apply(st,E[k]);}})();
function stateAt(s){var sn=snaps[Math.floor(s/SNAP)],st=clone(sn.st),k=sn.k,end=s<S?marks[s]:E.length;
 for(;k<end;k++) apply(st,E[k]); return st;}
// The snapshots store the state *before* the events of their step; stateAt(s) applies up to the next step mark.
function ms(t){return (t/1e6).toFixed(2)+" ms";}
function msgText(e){var n=NAME[e.kind]||e.kind;
 if(e.kind==="pre-prepare"||e.kind==="prepare"||e.kind==="commit") return n+"(view "+e.view+", seq "+e.seq+", d="+String(e.digest).slice(0,8)+")";
 if(e.kind==="view-change") return n+"(view "+e.view+", stable "+e.seq+")";
 if(e.kind==="new-view") return n+"(view "+e.view+", O: "+((e.o||[]).map(function(x){return x[0];}).join(",")||"none")+")";
 if(e.kind==="checkpoint") return n+"(seq "+e.seq+")";
 if(e.kind==="request") return n+"(tx "+String(e.digest).slice(0,8)+")";
 return n+(e.seq!==null&&e.seq!==undefined?"(seq "+e.seq+")":"");}
function describe(e){var t="t="+ms(e.t)+"  ";
 switch(e.ev){
 case "deliver": return t+e.to+" ← "+e.from+": "+msgText(e)+(e.status==="ok"?"":"  ["+e.status+"]");
 case "drop": return t+e.node+" refused "+(e.kind?(e.from||"?")+"'s "+msgText(e):"a message")+": "+e.reason;
 case "fault": return t+"FAULT "+e.text;
 case "proposed": return t+e.node+" proposed block "+e.seq+" (view "+e.view+", "+e.txs.length+" tx)";
 case "pre-prepared": return t+e.node+" pre-prepared seq "+e.seq+" (PRE-PREPARE from "+e.primary+")";
 case "prepared": return t+e.node+" PREPARED seq "+e.seq+": pre-prepare + "+e.prepares_from.length+" prepares ("+e.prepares_from.join(", ")+"; needs "+e.needed+")";
 case "committed-local": return t+e.node+" COMMITTED seq "+e.seq+": "+e.commits_from.length+" commits ("+e.commits_from.join(", ")+"; needs q = "+e.needed+")";
 case "executed": return t+e.node+" executed block "+e.seq+(e.via==="consensus"?"":" (by state transfer)");
 case "view-change-started": return t+e.node+" VIEW CHANGE to view "+e.view+" (stable "+e.stable_seq+", prepared: "+(e.prepared.join(",")||"none")+")";
 case "view-installed": return t+e.node+" installed view "+e.view+" (primary "+e.primary+")";
 case "checkpoint-stable": return t+e.node+" checkpoint "+e.seq+" stable: log at and below it discarded";
 } return t+e.ev;}
var $=function(id){return document.getElementById(id);};
var cur=0, timer=null;
var canvas=$("seq"), ctx=canvas.getContext("2d");
var extra=[]; copies.forEach(function(c){if(NODES.indexOf(c.src)<0&&extra.indexOf("clients")<0)extra.push("clients");});
var LANES=extra.concat(NODES);
function lane(id){var i=NODES.indexOf(id);return i<0?0:i+extra.length;}
function primaryOf(v){return NODES[v%N];}
function drawSeq(){
 var W=canvas.clientWidth||1000, LH=Math.max(9,Math.min(34,420/LANES.length)), top=22, left=90;
 var Ht=top+LH*LANES.length+14; if(canvas.width!==W||canvas.height!==Ht){canvas.width=W;canvas.height=Ht;}
 ctx.clearRect(0,0,W,Ht); ctx.font="11px sans-serif";
 var before=36, after=12, s0=Math.max(0,cur-before), s1=Math.min(S,cur+after);
 if(s1-s0<before+after){s0=Math.max(0,s1-before-after);s1=Math.min(S,s0+before+after);}
 var span=Math.max(1,s1-s0), plotW=W-left-16;
 function X(s){return left+(s-s0+0.5)/(span+1)*plotW;}
 function Y(i){return top+LH*(i+0.5);}
 ctx.fillStyle="#fafbfc";ctx.fillRect(left,top,plotW,LH*LANES.length);
 ctx.fillStyle="#fff8c5";ctx.fillRect(X(cur)-plotW/(span+1)/2,top,plotW/(span+1),LH*LANES.length);
 LANES.forEach(function(name,i){ctx.strokeStyle="#d8dee4";ctx.lineWidth=1;ctx.beginPath();ctx.moveTo(left,Y(i));ctx.lineTo(W-16,Y(i));ctx.stroke();
  ctx.fillStyle="#1b1f24";ctx.textAlign="right";ctx.textBaseline="middle";if(LH>=9)ctx.fillText(name,left-6,Y(i));});
 ctx.textAlign="left";ctx.fillStyle="#57606a";
 ctx.fillText("step "+s0+" … "+s1+" (x: steps, not to scale in time); t="+ms(s0>0?E[marks[s0-1]].t:(E[0]?E[0].t:0))+" … "+ms(E[marks[Math.max(0,s1-1)]]?E[marks[Math.max(0,s1-1)]].t:0),left,11);
 var hl=null;
 copies.forEach(function(c){
  var ss=c.sent===null?s0-1:stepOf[c.sent], as=c.arr===null?null:stepOf[c.arr];
  if(ss>cur){ if(ss<=s1&&as!==null&&as<=s1){ctx.globalAlpha=0.12;arrow(X(ss),Y(lane(c.src)),X(as),Y(lane(c.dst)),"#57606a",1);ctx.globalAlpha=1;} return;}
  if(as!==null&&as<s0) return; if(as===null&&ss<s0-before) return;
  var x0=X(Math.max(ss,s0-0.5)), y0=Y(lane(c.src)), y1=Y(lane(c.dst)), col=COL[c.kind]||"#333";
  var isCur=c.arr!==null&&cur>0&&c.arr===marks[cur-1];
  if(isCur){hl=c;return;}
  ctx.strokeStyle=col;ctx.globalAlpha=as!==null&&as<=cur?0.75:0.45;ctx.lineWidth=1;
  if(as!==null&&as<=cur){arrow(x0,y0,X(as),y1,col,1);}
  else if(c.lost){ctx.setLineDash([3,3]);var xm=x0+(X(ss+1)-x0)*0.8,ym=y0+(y1-y0)*0.4;line(x0,y0,xm,ym);ctx.setLineDash([]);cross(xm,ym);}
  else {ctx.setLineDash([4,3]);var f=(cur-ss+0.5)/Math.max(1,(as===null?cur+1:as)-ss+0.5);f=Math.min(0.9,Math.max(0.1,f));
   line(x0,y0,x0+(X(cur)-x0)*1,y0+(y1-y0)*f);ctx.setLineDash([]);}
  ctx.globalAlpha=1;});
 // phase marks and faults
 for(var s=Math.max(1,s0);s<=Math.min(cur,s1);s++){var e=E[marks[s-1]],x=X(s);
  if(e.ev==="fault"){ctx.strokeStyle="#cf222e";ctx.setLineDash([2,3]);line(x,top,x,top+LH*LANES.length);ctx.setLineDash([]);
   ctx.fillStyle="#cf222e";ctx.fillText(e.text,x+3,top+8);continue;}
  if(!e.node)continue; var y=Y(lane(e.node));
  var m={"prepared":["◆","#ff7f0e"],"committed-local":["★","#2ca02c"],"executed":["|","#000"],"view-change-started":["▼","#d62728"],
   "view-installed":["■","#8c564b"],"checkpoint-stable":["✚","#9467bd"],"drop":["✖","#cf222e"],"pre-prepared":["•","#1f77b4"],"proposed":["●","#1f77b4"]}[e.ev];
  if(m){ctx.fillStyle=m[1];ctx.textAlign="center";ctx.font=(e.ev==="committed-local"?"16px":"13px")+" sans-serif";ctx.fillText(m[0],x,y);ctx.font="11px sans-serif";ctx.textAlign="left";}}
 if(hl){var ss=hl.sent===null?s0-0.5:Math.max(stepOf[hl.sent],s0-0.5);
  ctx.globalAlpha=1;arrow(X(ss),Y(lane(hl.src)),X(cur),Y(lane(hl.dst)),"#000",4.5);arrow(X(ss),Y(lane(hl.src)),X(cur),Y(lane(hl.dst)),COL[hl.kind]||"#333",2.5);}
}
function line(a,b,c,d){ctx.beginPath();ctx.moveTo(a,b);ctx.lineTo(c,d);ctx.stroke();}
function cross(x,y){ctx.strokeStyle="#cf222e";ctx.lineWidth=1.5;line(x-3,y-3,x+3,y+3);line(x-3,y+3,x+3,y-3);ctx.lineWidth=1;}
function arrow(x0,y0,x1,y1,col,w){ctx.strokeStyle=col;ctx.fillStyle=col;ctx.lineWidth=w;line(x0,y0,x1,y1);
 var a=Math.atan2(y1-y0,x1-x0),L=6+w;ctx.beginPath();ctx.moveTo(x1,y1);ctx.lineTo(x1-L*Math.cos(a-0.4),y1-L*Math.sin(a-0.4));
 ctx.lineTo(x1-L*Math.cos(a+0.4),y1-L*Math.sin(a+0.4));ctx.closePath();ctx.fill();ctx.lineWidth=1;}
function esc(s){return String(s).replace(/[&<>]/g,function(c){return{"&":"&amp;","<":"&lt;",">":"&gt;"}[c];});}
function phaseText(n){if(n.vc!==null&&n.vc!==undefined&&!n.active) return "changing view → "+n.vc;
 return n.seq===null?"idle":"seq "+n.seq+": "+n.phase;}
function render(){
 var st=stateAt(cur), e=cur>0?E[marks[cur-1]]:null, who=e?(e.to||e.node||e.target):null;
 $("now").textContent=e?("step "+cur+" of "+S+": "+describe(e)):"step 0 of "+S+": the start of the window (press ▶ or →)";
 var rows="<tr><th>node</th><th>role</th><th>status</th><th>view</th><th>phase (block in flight)</th><th>executed</th><th>low h</th><th>high H</th><th>log</th></tr>";
 NODES.forEach(function(id){var n=st.nodes[id], cls=[];
  if(n.status!=="up")cls.push("down"); if(n.byzantine)cls.push("byz"); if(id===who)cls.push("hit");
  var role=(primaryOf(n.view)===id?"primary":"backup")+(n.byzantine?" · Byzantine ("+n.byzantine+")":"");
  var ph=phaseText(n), pcls=n.active?"phase-"+n.phase:"";
  rows+="<tr class='"+cls.join(" ")+"' data-node='"+id+"'><td>"+id+"</td><td>"+esc(role)+"</td><td>"+n.status+"</td><td>"+n.view+(n.active?"":" (inactive)")+
   "</td><td class='"+pcls+"' data-phase='"+esc(n.phase)+"'>"+esc(ph)+"</td><td>"+n.executed+"</td><td>"+n.low+"</td><td>"+n.high+"</td><td>"+n.log+"</td></tr>";});
 $("nodes").innerHTML=rows;
 $("net").textContent="network: "+st.network+".  n = "+H.n+", f = "+H.f+", quorum q = "+H.quorum+", checkpoint every K = "+H.checkpoint_interval+", watermark window L = "+H.watermark_window+".";
 $("scrub").value=cur; $("pos").textContent=cur+" / "+S;
 var from=Math.max(1,cur-40), to=Math.min(S,cur+8), out=[];
 for(var s=from;s<=to;s++) out.push("<div"+(s===cur?" class=cur":"")+">"+(s<=cur?"":"  ")+esc(s+". "+describe(E[marks[s-1]]))+"</div>");
 $("log").innerHTML=out.join(""); var c=$("log").querySelector(".cur"); if(c)$("log").scrollTop=c.offsetTop-$("log").offsetTop-80;
 drawSeq();}
function go(s){cur=Math.max(0,Math.min(S,s));render();}
function stop(){if(timer){clearInterval(timer);timer=null;}$("play").textContent="▶ play";}
function play(){if(timer){stop();return;} if(cur>=S)cur=0; $("play").textContent="⏸ pause";
 timer=setInterval(function(){if(cur>=S){stop();return;}go(cur+1);},1000/Number($("speed").value));}
$("first").onclick=function(){stop();go(0);}; $("last").onclick=function(){stop();go(S);};
$("back").onclick=function(){stop();go(cur-1);}; $("fwd").onclick=function(){stop();go(cur+1);};
$("play").onclick=play; $("speed").onchange=function(){if(timer){stop();play();}};
$("scrub").max=S; $("scrub").addEventListener("input",function(){stop();go(Number(this.value));});
document.addEventListener("keydown",function(ev){if(ev.target.tagName==="SELECT")return;
 if(ev.key==="ArrowRight"){stop();go(cur+1);ev.preventDefault();} else if(ev.key==="ArrowLeft"){stop();go(cur-1);ev.preventDefault();}
 else if(ev.key===" "){play();ev.preventDefault();} else if(ev.key==="Home"){stop();go(0);} else if(ev.key==="End"){stop();go(S);}});
window.addEventListener("resize",drawSeq);
var legend=""; Object.keys(COL).forEach(function(k){legend+="<span><i style='background:"+COL[k]+"'></i>"+NAME[k]+"</span>";});
$("legend").innerHTML=legend+"<span>◆ prepared</span><span>★ committed</span><span>| executed</span><span>▼ view change</span><span>■ view installed</span><span>✚ checkpoint stable</span><span>✖ refused</span><span>dashed: in flight / ×: lost</span>";
// ?step=K or ?at=I (a trace event's "i": the step that shows it); ?selftest=1 checks the stepper and reports in #selftest
var P=new URLSearchParams(location.search);
if(P.get("at")!==null){var at=Number(P.get("at"));for(var s=1;s<=S;s++){if(E[marks[s-1]].i>=at){cur=s;break;}}}
else if(P.get("step")!==null) cur=Math.max(0,Math.min(S,Number(P.get("step"))));
render();
function snapshot(){var st=stateAt(cur),o={};NODES.forEach(function(id){var n=st.nodes[id];
 o[id]={phase:n.phase,seq:n.seq,view:n.view,low:n.low,high:n.high,log:n.log,status:n.status,executed:n.executed,
  cell:document.querySelector("#nodes tr[data-node='"+id+"'] td:nth-child(5)").textContent};});return o;}
if(P.get("selftest")!==null){
 var r={steps:S,events:E.length,start:cur,event:cur>0?E[marks[cur-1]]:null,now:$("now").textContent,state:snapshot()};
 var table0=$("nodes").innerHTML, k=Number(P.get("k")||5), moved=0;
 for(var j=0;j<k;j++){var before=cur;$("fwd").click();if(cur!==before)moved++;}
 r.forward_steps=moved; r.forward_state=snapshot(); r.forward_differs=$("nodes").innerHTML!==table0;
 for(var j=0;j<moved;j++)$("back").click();
 r.back_same=$("nodes").innerHTML===table0&&cur===r.start;
 var sc=$("scrub");sc.value=String(S);sc.dispatchEvent(new Event("input"));r.scrub_end=cur;
 sc.value=String(r.start);sc.dispatchEvent(new Event("input"));r.scrub_back=cur;
 r.canvas=canvas.width+"x"+canvas.height; r.errors=errors;
 $("selftest").textContent=JSON.stringify(r); $("selftest").hidden=false;}
})();
"""
