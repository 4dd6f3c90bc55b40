"""The ``citychain`` command line."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .exits import BAD_INPUT as EXIT_BAD_INPUT
from .exits import verdict

if TYPE_CHECKING:  # the scenario model (pydantic and the apps) loads when a command needs it, not for --help
    from .scenario import Scenario

stderr = Console(stderr=True)


def _load(path: str, nodes: int | None, seed: int | None) -> Scenario:
    from .scenario import ScenarioError, load_with_overrides

    try:
        return load_with_overrides(path, nodes, seed)
    except ScenarioError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="citychain")
def main():
    """citychain: simulate signed PBFT consortium chains of Chinese city and provincial governments."""
    signal.signal(signal.SIGTERM, _remove_scratch_then_die)


def _remove_scratch_then_die(signum, _frame) -> None:
    """SIGTERM: remove the simulator's scratch stores (node/history.py), then die of the
    signal as if it had not been caught. (SIGINT unwinds as KeyboardInterrupt, and the
    stores go at exit.)"""
    from node.history import close_all

    close_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@main.command()
@click.argument("scenario")
@click.option("--nodes", type=click.IntRange(4, 256), help="Override the scenario's consensus node count.")
@click.option("--seed", type=click.IntRange(0), help="Override the scenario's seed.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Export the run here: summary.json, genesis/, ledgers/, submitted.jsonl, faults.json.")
@click.option("--force", is_flag=True, help="Replace --out if it holds an earlier export.")
@click.option("--no-trace", is_flag=True, help="With --out: do not record trace.jsonl and replica-state.png.")
@click.option("--report-window", "report_window", metavar="START_MS:END_MS",
              help="The part of the run report.html steps through (default: the whole run, or for a large run "
                   "4000 events around the first view change or else the first blocks).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: when a terminal).")
@click.option("--scratch", type=click.Path(file_okay=False, exists=True, writable=True),
              help="Directory for the run's temporary history store, removed when the run ends "
                   "(default: --out's parent, else $TMPDIR).")
@click.option("--verify-worker/--no-verify-worker", "verify_worker", default=None,
              help="Check signatures ahead in a second process on another core; the run is the same either way "
                   "(default: on with two cores or more; CITYCHAIN_VERIFY_PROCESS=0 or 1 overrides the default).")
def run(scenario, nodes, seed, out, force, no_trace, report_window, as_json, progress, scratch, verify_worker):
    """Run SCENARIO in the deterministic simulator and summarise it.

    SCENARIO is a scenario file or a shipped scenario's name (`citychain scenarios`).

    --out must be empty or new (--force replaces an earlier export); it is claimed
    before the simulation starts and written in one step when it ends.

    Exits 0 if safety and liveness hold, 1 on a safety violation, 2 if the
    scenario, an option or --out is unusable, 3 if a transaction was never
    answered or answered later than the liveness bound.
    """
    from .export import ExportTarget, OutputError, write_run
    from .sim.run import simulate
    from .sim.verify import default_process
    from .summary import audit_run, summarize

    spec = _load(scenario, nodes, seed)
    worker = default_process(auto=True) if verify_worker is None else verify_worker
    if force and not out:
        raise click.UsageError("--force goes with --out")
    window = _window(report_window)
    target = ExportTarget(Path(out), force) if out else None
    result = None
    try:
        if target:
            target.prepare()
        show = stderr.is_terminal if progress is None else progress
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("tx"), TimeElapsedColumn(), console=stderr, transient=True,
                      disable=not show) as bar:
            task = bar.add_task(f"{spec.chain.id} n={spec.nodes}", total=spec.workload.transactions)
            result = simulate(spec, progress=lambda done, total: bar.update(task, completed=done),
                              record=bool(target) and not no_trace, verify_process=worker,
                              scratch=Path(scratch) if scratch else target.parent if target else None)
            bar.update(task, completed=result.metrics.first_executions)
        report = audit_run(result)
        summary = summarize(result, scenario, report)
        if target:
            target.commit(lambda directory: write_run(directory, result, summary, scenario, window))
    except OSError as exc:
        click.echo(f"error: {exc}" if isinstance(exc, OutputError) else f"error: writing --out {out}: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    finally:
        if target:
            target.close()
        if result is not None:
            result.close()
    if as_json:
        click.echo(json.dumps(summary, sort_keys=False))
    else:
        _print_summary(summary, report)
    sys.exit(verdict(not summary["safety_violations"], summary["liveness"]["ok"]))


def _window(text):
    if not text:  # the usual case: no need to load the report's module (start-up counts)
        return None
    from .teach.report import WindowError, parse_window

    try:
        return parse_window(text)
    except WindowError as exc:
        raise click.BadParameter(str(exc), param_hint="--report-window") from None


def _print_summary(s: dict, report) -> None:
    console = Console()
    n, f, q = s["nodes"], s["f"], s["quorum"]
    rule = f"2f+1 = {q}" if n == 3 * f + 1 else f"⌈(n+f+1)/2⌉ = {q}; 2f+1 = {2 * f + 1} would not do at n = {n}"
    table = Table(title=f"{s['scenario']}: {s['chain_id']}, n = {n} nodes, f = {f}, quorum {rule}; seed {s['seed']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    lat = s["latency_ms"]
    rows = [
        ("transactions submitted / committed / rejected by apps",
         f"{s['submitted_tx']} / {s['committed_tx']} / {s['rejected_tx']}"),
        ("blocks", str(s["blocks"])),
        ("throughput (tx/s, virtual)", f"{s['tps']:.1f}"),
        ("latency p50 / p95 / p99 / max (ms)", f"{lat['p50']:.2f} / {lat['p95']:.2f} / {lat['p99']:.2f} / {lat['max']:.2f}"),
        ("messages (consensus / background state transfer / client)",
         f"{s['messages']['total']:,} ({s['messages']['consensus']:,} / {s['messages']['background']:,} / "
         f"{s['messages']['client']:,})"),
        ("bytes", f"{s['bytes']:,}"),
        ("messages dropped (by reason)", ", ".join(f"{k} {v}" for k, v in s["dropped"].items()) or "none"),
        *([("EQUIVOCATION (two blocks for one view and seq)",
            f"{s['equivocation']['conflicting_pre_prepares']} by {', '.join(s['equivocation']['equivocators']) or '?'}; "
            f"{s['equivocation']['refused_as_conflicting']} refused as conflicting")]
          if s["equivocation"]["conflicting_pre_prepares"] or s["equivocation"]["refused_as_conflicting"] else []),
        ("client retransmissions", str(s["client_retries"])),
        ("view changes", str(s["view_changes"])),
        ("faulty nodes", ", ".join(s["faulty_nodes"]) or "none"),
        ("liveness", f"{'ok' if s['liveness']['ok'] else 'FAILED'}: {s['liveness']['uncommitted']} unanswered; "
         f"longest wait {s['liveness']['recovery_ms']:.0f} ms from submission or the last fault "
         f"({s['liveness']['healed_at_ms']:.0f} ms), bound {s['liveness']['bound_ms']:.0f}"),
        *([("recovery (from the fault)", "; ".join(
            f"{r['fault']} at {r['at_ms']:.0f} ms: "
            + (f"answered again {r['recovered_ms']:.0f} ms later" if r["recovered_ms"] is not None
               else "nothing submitted after it was answered") for r in s["recovery"]))] if s["recovery"] else []),
        ("agreement", "yes" if s["agreement"] else "NO"),
        ("safety violations", str(s["safety_violations"])),
        ("head", f"#{s['head']['height']} {s['head']['hash'][:16]}"),
        ("virtual / wall seconds", f"{s['sim_seconds']:.3f} / {s['wall_seconds']:.2f}"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if s["faults"]:
        console.print("fault timeline: " + "; ".join(f"{e['at_ms']:.0f} ms {e['event']}" for e in s["faults"]))
    if s["liveness"].get("reason"):
        console.print(f"[red]liveness:[/] {s['liveness']['reason']}")
    lagging = {k: v for k, v in s["node_status"].items() if not v["caught_up"] or not v["up"]}
    for node, st in list(lagging.items())[:10]:
        console.print(f"{node}: {st['role']}, {'up' if st['up'] else 'down'}, height {st['height']}, view {st['view']}")
    for line in report.safety_violations[:10]:
        console.print(f"[red]safety:[/] {line}")


@main.command()
@click.argument("scenario")
@click.option("--block", "height", type=click.IntRange(1), help="Draw the round of block H (default: block 1).")
@click.option("--view-change", "view_change", type=click.IntRange(1), help="Draw the N-th view change instead.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--narrate", is_flag=True, help="Print the instance step by step.")
@click.option("--nodes", type=click.IntRange(4, 256), help="Override the scenario's consensus node count.")
@click.option("--seed", type=click.IntRange(0), help="Override the scenario's seed.")
@click.option("--report-window", "report_window", metavar="START_MS:END_MS",
              help="The part of the run report.html steps through (default: the whole run, or for a large run "
                   "4000 events around the instance drawn).")
def trace(scenario, height, view_change, out, narrate, nodes, seed, report_window):
    """Run SCENARIO recorded and draw one consensus instance of it.

    Writes to OUT: trace.jsonl (the whole run, docs/teaching.md), a sequence diagram
    of the instance (block-H.svg/.png or view-change-N.svg/.png: a lane per node, an
    arrow per message coloured by phase, each node's prepared and committed moments
    with the quorum that did it) and replica-state.png (watermarks, stable checkpoint
    and log size per node), and report.html (the summary, the pictures and a
    step-through timeline of the run, one self-contained page). --narrate prints the
    instance step by step.

    Exits 2 if the block or view change is not in the run.
    """
    from .sim.run import simulate
    from .summary import audit_run, summarize
    from .teach.instance import NotInTrace, block_instance, view_change_instance
    from .teach.narrate import lines
    from .teach.plots import replica_state, sequence_diagram
    from .teach.report import write_report

    if height and view_change:
        raise click.UsageError("--block and --view-change are alternatives")
    window = _window(report_window)
    spec = _load(scenario, nodes, seed)
    result = simulate(spec, record=True)
    summary = summarize(result, scenario, audit_run(result))
    recorded = result.trace(scenario)
    try:
        inst = view_change_instance(recorded, view_change) if view_change else block_instance(recorded, height or 1)
    except NotInTrace as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    recorded.write(directory / "trace.jsonl")
    name = f"view-change-{view_change}" if view_change else f"block-{height or 1}"
    written = sequence_diagram(inst, directory / name)
    written.append(replica_state(recorded, directory / "replica-state.png"))
    written.append(write_report(directory / "report.html", summary, recorded, images=[written[1], written[2]],
                                window=window, around_ns=inst.start,
                                title=f"citychain trace {scenario}: {inst.title}"))
    if narrate:
        for line in lines(inst):
            click.echo(line)
    click.echo(f"wrote {directory / 'trace.jsonl'}, " + ", ".join(str(p) for p in written), err=narrate)


@main.command()
@click.argument("scenario")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--nodes", type=click.IntRange(4, 256), help="Override the scenario's consensus node count.")
@click.option("--seed", type=click.IntRange(0), help="Override the scenario's seed.")
def genesis(scenario, out, nodes, seed):
    """Write the chain's CA, member certificates and genesis.json to OUT.

    SCENARIO is a scenario file or a shipped scenario's name (`citychain scenarios`).

    Check a certificate with: openssl verify -CAfile OUT/ca.pem OUT/node-00.pem
    """
    from .genesis import build_genesis

    spec = _load(scenario, nodes, seed)
    g = build_genesis(spec)
    try:
        g.write(Path(out))  # genesis.json last: a write that fails leaves no genesis that reads as whole
    except OSError as exc:
        click.echo(f"error: writing --out {out}: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"wrote {out}/genesis.json, ca.pem, {len(g.nodes)} node and {len(g.clients)} client "
               f"certificates; genesis hash {g.hash}")


@main.command()
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("tx_id", required=False)
@click.option("--height", type=click.IntRange(1), help="Ask about block H instead of a transaction.")
@click.option("--node", help="Only this node (node-05, node-5 or 5; default: every honest node).")
def why(out_dir, tx_id, height, node):
    """Why was TX_ID (or a prefix of it) or block H not committed? OUT_DIR is from
    `citychain run --out` (its trace.jsonl). Names the messages from which nodes never
    arrived, and why: a crash, a partition, a Byzantine node, a view change in progress,
    a copy lost or refused. Exits 2 on a bad question."""
    from .sim.trace import Trace
    from .teach.why import explain

    if bool(tx_id) == bool(height):
        raise click.UsageError("give a TX_ID or --height H")
    path = Path(out_dir) / "trace.jsonl"
    try:
        recorded = Trace.read(path)
    except (OSError, ValueError) as exc:
        click.echo(f"error: {exc} (run `citychain run SCENARIO --out DIR` without --no-trace)", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if node and not node.startswith("node-"):
        node = f"node-{node}"
    if node and node not in recorded.header["nodes"]:
        width = len(recorded.header["nodes"][0]) - len("node-")
        node = f"node-{int(node.split('-')[1]):0{width}d}" if node.split("-")[1].isdigit() else node
    try:
        for line in explain(recorded, tx_id, height, node):
            click.echo(line)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


@main.group()
def crl():
    """The chain CA's revocation list, revocations.crl, in a genesis directory.

    Exit codes: 0 done; 2 bad input (no readable genesis.json, an unknown member, no CA
    key or another key, a revocations.crl the chain's CA did not sign, a bad option).
    """


def _utc(value):
    import datetime

    return value if value is None or value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


@crl.command("revoke")
@click.option("--genesis", "genesis_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="The genesis directory (genesis.json; revocations.crl is written beside it).")
@click.option("--member", required=True, help="The member or client id to revoke (node-03, client-7).")
@click.option("--at", "at", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]),
              help="Revoked from this UTC date and time (default: now, or the date it has if MEMBER is "
              "revoked already). Dates are whole seconds.")
@click.option("--reason", help="The CRL reason code: key-compromise, ca-compromise, affiliation-changed, superseded, "
              "cessation-of-operation, certificate-hold, privilege-withdrawn or aa-compromise.")
def crl_revoke(genesis_dir, member, at, reason):
    """Add MEMBER to revocations.crl, signed by the chain CA's key.

    The key is ca-key.pem in the genesis directory or beside it (a cluster's directory:
    citychain cluster up writes it there); a genesis from `citychain genesis` has none,
    and the command exits 2. The list keeps every earlier revocation, carries the next CRL
    number and is written atomically; running nodes reload it (on SIGHUP, or within a
    heartbeat of the file changing: docs/deployment.md).
    """
    import datetime

    from .crl import CrlError, revoke

    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        done = revoke(Path(genesis_dir), member, _utc(at),
                      reason.replace("-", "_") if reason else None, now)
    except (CrlError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"wrote {genesis_dir}/revocations.crl: CRL number {done.number}, {len(done.entries)} revoked")


@crl.command("show")
@click.option("--genesis", "genesis_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="The genesis directory holding revocations.crl.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def crl_show(genesis_dir, as_json):
    """List revocations.crl: who is revoked, from when, why (no file: nobody)."""
    from .crl import CrlError, show

    try:
        listed, entries = show(Path(genesis_dir))
    except CrlError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    rows = [{"member": e.member, "serial": f"{e.serial:x}", "revoked_from": e.revoked_from.isoformat(),
             "reason": e.reason.replace("_", "-") if e.reason else None} for e in entries]
    if as_json:
        click.echo(json.dumps({
            "crl_number": listed.number if listed else None,
            "last_update": listed.last_update.isoformat() if listed else None,
            "next_update": listed.next_update.isoformat() if listed and listed.next_update else None,
            "revoked": rows}))
        return
    if listed is None:
        click.echo("no revocations.crl: nobody is revoked")
        return
    table = Table(title=f"revocations.crl: CRL number {listed.number}, issued {listed.last_update.isoformat()}")
    for column in ("member", "serial", "revoked from", "reason"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["member"] or "(not in this genesis)", r["serial"], r["revoked_from"], r["reason"] or "")
    Console().print(table)


@main.command()
def scenarios():
    """List the scenarios that ship with citychain, one line each.

    Run one by its name (`citychain run taihu`); a scenario file of your own can
    start from one with `base: taihu`.
    """
    from .scenario import load_scenario, shipped_scenarios, summary_line

    shipped = shipped_scenarios()
    width = max(map(len, shipped))
    for name, path in shipped.items():
        click.echo(f"{name:<{width}}  {load_scenario(path).nodes:>3} nodes  {summary_line(path)}")


def _genesis_hash_option(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) != 64 or not all(c in "0123456789abcdefABCDEF" for c in value):
        raise click.BadParameter("a genesis hash is 64 hex digits (sha256sum genesis/genesis.json)")
    return value.lower()


GENESIS_HASH_HELP = ("The genesis hash you trust, obtained out of band (sha256sum of the genesis.json you were "
                     "given): exit 4 if the export's genesis.json differs. Without it, the signatures prove only "
                     "that the export is consistent with its own genesis.")


def _unexpected(what: str, exc: BaseException) -> None:
    """No input may end in a traceback (whose exit code 1 would read as "unsafe")."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    click.echo(f"error: {what}: unexpected {type(exc).__name__}{': ' + first[:300] if first else ''} "
               "(a bug in citychain: please report it)", err=True)
    sys.exit(EXIT_BAD_INPUT)


@main.command()
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--at", "at", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Check that member certificates are valid at this UTC date (default: now).")
@click.option("--genesis-hash", "genesis_pin", metavar="HASH", help=GENESIS_HASH_HELP)
def audit(out_dir, as_json, at, genesis_pin):
    """Audit the export in OUT_DIR (`citychain run --out`) on its signed evidence alone.

    Checks the genesis and every member certificate against the chain's CA; each
    ledger on its own (canonical lines, hash links, heights, transaction signatures,
    commit certificates of a quorum of consensus members, and receipts and state
    roots recomputed by replaying the apps); that no height holds two blocks with
    valid commit certificates; and that every submitted transaction is in the chain
    in time. faults.json only annotates. docs/audit.md says exactly what is checked.

    A simulated run's keys derive from its seed: the report says so ("keys"), as
    its signatures then prove consistency, not authenticity. Pin the genesis you
    trust with --genesis-hash.

    Exits 0 if all holds, 1 on a safety violation, 4 if the export fails a check (an
    invalid or out-of-order ledger, a bad member certificate, a genesis other than
    --genesis-hash), 3 on a liveness failure, 2 if there is nothing to audit or an
    input is unreadable (the codes of `citychain run`).
    """
    import datetime

    from .audit import ExportError, audit_export

    when = at.replace(tzinfo=datetime.timezone.utc) if at else None
    pin = _genesis_hash_option(genesis_pin)
    try:
        report = audit_export(Path(out_dir), at=when, genesis_pin=pin)
    except ExportError as exc:
        click.echo(f"error: cannot audit {out_dir}: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Exception as exc:  # noqa: BLE001
        _unexpected(f"cannot audit {out_dir}", exc)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        for line in report.text():
            click.echo(line)
    sys.exit(report.exit_code)


@main.command()
@click.argument("scenario")
@click.option("--nodes", "nodes_text", help="Node counts: '20,30,40' or '4..64:4' (default: the scenario's).")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1, 100), help="Seeds per point.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=V1,V2",
              help="Sweep another parameter too, e.g. --set consensus.block_size=50,100,200 (repeatable).")
@click.option("--out", type=click.Path(file_okay=False), help="Where to write (default: bench-out/CHAIN).")
@click.option("--json", "as_json", is_flag=True, help="Print the aggregated rows as one JSON object.")
@click.option("--jobs", "-j", type=click.IntRange(1), metavar="N",
              help="Runs at a time, each in its own process (default: the number of cores; 1: in this process). "
                   "The results are the same as a serial sweep's but for the wall-clock seconds.")
@click.option("--dask", "dask_address", metavar="SCHEDULER_ADDRESS",
              help="Send the runs to a Dask distributed cluster (e.g. tcp://10.0.0.5:8786; needs the 'dask' extra: "
                   "pip install 'citychain[dask]'). Same results as a serial sweep but for the wall-clock seconds.")
@click.option("--capacity", is_flag=True,
              help="For each n, search the saturation throughput (raise the offered load until the criterion "
                   "fails, then bisect) and write capacity.csv, capacity.png and report.html.")
@click.option("--latency-bound-ms", default=1000.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="--capacity: a probe fails when its p95 latency (virtual ms) exceeds this.")
@click.option("--window-s", default=1.0, show_default=True, type=click.FloatRange(0, 60, min_open=True),
              help="--capacity: each probe offers at least this many virtual seconds of load.")
@click.option("--tolerance", default=0.05, show_default=True, type=click.FloatRange(0.001, 1),
              help="--capacity: bisect until the highest rate that held and the lowest that failed are this "
                   "close (relative).")
def bench(scenario, nodes_text, seeds, sets, out, as_json, jobs, dask_address, capacity, latency_bound_ms,
          window_s, tolerance):
    """Sweep SCENARIO over node counts (and any --set parameters) and report.

    SCENARIO is a scenario file or a shipped scenario's name (`citychain scenarios`).

    Writes results.csv and results.json (a row per run and a row per point with
    mean and spread), PNG plots (throughput, latency, messages per block against
    PBFT's analytic count, bandwidth per node) and a self-contained report.html.
    With --capacity: capacity.csv, capacity.json, capacity.png and report.html.
    Figures are virtual time (the simulated clock) but for wall-clock seconds.
    """
    import shlex

    from .bench.run import BenchError, run_capacity, run_sweep
    from .bench.sweep import parse_counts, parse_set
    from .scenario import ScenarioError

    spec = _load(scenario, None, None)
    try:
        counts = [spec.nodes] if nodes_text is None else parse_counts(nodes_text)
        if min(counts) < 4 or max(counts) > 256:
            raise ValueError("node counts must be within 4..256")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--nodes") from None
    try:
        parsed = [parse_set(s) for s in sets]
        fields = [k for k, _ in parsed]
        twice = sorted({k for k in fields if fields.count(k) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} given twice; give each field once, with all its values "
                             "(FIELD=V1,V2)")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    out_dir = Path(out or f"bench-out/{spec.chain.id}")
    command = "citychain " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else None
    try:
        if capacity:
            from .bench.capacity import Criterion
            from .bench.sweep import apply

            if seeds != 1 or any(len(v) != 1 for _, v in parsed):
                raise click.BadParameter("--capacity searches one seed and one value of each --set field",
                                         param_hint="--capacity")
            if parsed:
                spec = apply(spec, {k: v[0] for k, v in parsed}, scenario)
            criterion = Criterion(latency_bound_ms=latency_bound_ms, window_s=window_s, tolerance=tolerance)
            summary = run_capacity(spec, scenario, counts, criterion, out_dir, stderr, jobs, dask_address, command)
        else:
            agg = run_sweep(spec, scenario, counts, seeds, parsed, out_dir, stderr, jobs, dask_address, command)
    except ScenarioError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except BenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if capacity:
        if as_json:
            click.echo(json.dumps({"out": str(out_dir), "capacity": summary}))
            return
        table = Table(title=f"{spec.chain.name}: capacity -> {out_dir}/report.html",
                      caption="tx/s (successful tx), ms: virtual time; wall s: the simulator's wall-clock")
        for col in ["n", "capacity tx/s", "held at tx/s", "p95 ms", "failed at tx/s", "probes", "wall s"]:
            table.add_column(col, justify="right")
        for r in summary:
            table.add_row(str(r["nodes"]), f"{r['capacity_tps']:.0f}", str(r["capacity_offered_tps"]),
                          f"{r['capacity_p95_ms']:.1f}", str(r["first_failing_offered_tps"]), str(r["probes"]),
                          f"{r['wall_seconds']:.1f}")
        Console().print(table)
        return
    if as_json:
        click.echo(json.dumps({"out": str(out_dir), "points": agg}))
        return
    table = Table(title=f"{spec.chain.name}: {len(agg)} points -> {out_dir}/report.html",
                  caption="tx/s (successful tx), ms, Mbit/s: virtual time; wall s: the simulator's wall-clock")
    keys = [k for k, _ in parsed]
    for col in [*keys, "n", "tx/s", "p50 ms", "p99 ms", "msgs/blk consensus", "msgs/blk +requests",
                "Mbit/s/node", "wall s"]:
        table.add_column(col, justify="right")
    for r in agg:
        table.add_row(*[str(r[k]) for k in keys], str(r["nodes"]), f"{r['throughput_tps']:.0f}",
                      f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['consensus_messages_per_block']:.0f}",
                      f"{r['consensus_and_request_messages_per_block']:.0f}",
                      f"{r['bandwidth_mbps_per_node']:.2f}", f"{r['wall_seconds']:.2f}")
    Console().print(table)


@main.command()
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("app")
@click.argument("key", required=False)
@click.option("--node", help="Whose ledger to replay: node-05, node-5 or 5; observer-01 (default: the first "
                             "member's ledger, in genesis order).")
@click.option("--file", "document", type=click.Path(exists=True, dir_okay=False),
              help="evidence: verify this document against the chain (by its SHA-256).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(0),
              help="At most this many matching keys.")
@click.option("--unchecked", is_flag=True,
              help="Skip the genesis's certificates, transaction signatures and commit certificates (faster; the "
                   "answer then says \"checked\": false). Hash links, state roots and receipts are still checked.")
@click.option("--genesis-hash", "genesis_pin", metavar="HASH", help=GENESIS_HASH_HELP)
def query(out_dir, app, key, node, document, limit, unchecked, genesis_pin):
    """Read APP's state at KEY from a node of an exported run (by `citychain run --out`).

    The node's ledger is first checked as `citychain audit` checks one ledger (the
    genesis's certificates, hash links, transaction signatures, commit certificates)
    and replayed through the apps, checking every block's state root and receipts.
    A KEY that is not a record lists the records it prefixes. Examples:

    \b
      citychain query OUT traceability batch/B000123     trace a batch from farm to shelf
      citychain query OUT evidence --file contract.pdf   verify a document
      citychain query OUT provident_fund access/CQ00042  who accessed a fund record
      citychain query OUT licences licence/              list licences

    Only a member's ledger is served (a file named after a consensus member or an
    observer of the genesis). "keys" in the answer says whether the genesis keys
    derive from the run's seed (a simulated run's do: then "checked" proves
    consistency, not authenticity); pin the genesis you trust with --genesis-hash.

    Exits 0 with an answer, 2 on a bad question (unknown app or node), 4 if the
    genesis or the ledger fails its checks, or the ledger is not a member's, or the
    genesis is not --genesis-hash (the codes of `citychain audit`).
    """
    from .exits import INVALID
    from .query import QueryError, UntrustedLedger, query as run_query

    pin = _genesis_hash_option(genesis_pin)
    try:
        answer = run_query(Path(out_dir), app, key, node, Path(document) if document else None, limit,
                           checked=not unchecked, genesis_pin=pin)
    except UntrustedLedger as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(INVALID)
    except (QueryError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Exception as exc:  # noqa: BLE001
        _unexpected(f"cannot query {out_dir}", exc)
    if unchecked:
        click.echo("warning: --unchecked: signatures and commit certificates were not checked", err=True)
    click.echo(json.dumps(answer, indent=2))


@main.command()
@click.option("--samples", default=2000, show_default=True, type=click.IntRange(100), help="Operations to time.")
def calibrate(samples):
    """Measure this machine's Ed25519 sign and verify cost and print a scenario `cpu:` block."""
    from .sim.calibrate import measure

    sign_us, verify_us = measure(samples)
    click.echo(f"cpu:\n  sign_us: {sign_us:.1f}\n  verify_us: {verify_us:.1f}")


def _register_cluster_commands() -> None:
    # The broker-mode commands live with the cluster code (citychain/cluster/commands.py).
    from .cluster.commands import cluster, node_command
    main.add_command(node_command)
    main.add_command(cluster)


_register_cluster_commands()


def entry() -> None:
    """``citychain`` and ``python -m citychain``: ``main`` with an unwritable stdout (a full disk,
    /dev/full) reported as bad output, exit 2, not a traceback whose exit 1 would read as unsafe."""
    import os

    try:
        try:
            main()
        finally:
            sys.stdout.flush()
    except OSError as exc:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())  # the interpreter's last flush of what is still buffered must not fail
        click.echo(f"error: cannot write to standard output: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    entry()
