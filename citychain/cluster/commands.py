"""The ``citychain node`` command and the ``citychain cluster`` group."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..exits import BAD_INPUT, NOT_LIVE

stderr = Console(stderr=True)
DEFAULT_DIR = "citychain-cluster"


def _fail(message: str, code: int = BAD_INPUT) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _address(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    from .endpoint import parse_address
    try:
        return parse_address(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--broker") from None


@click.command("node")
@click.option("--genesis", "genesis_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="The chain's genesis directory (genesis.json and certificates).")
@click.option("--id", "ids", required=True, multiple=True,
              help="The node to run (node-NN or observer-NN); repeat to run several in this process.")
@click.option("--broker", "broker", required=True, help="The broker's HOST:PORT.")
@click.option("--data", "data", required=True, type=click.Path(file_okay=False),
              help="Data root: each node keeps key.pem, broker.json and its store in DATA/ID/.")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False),
              help="Connect with TLS, trusting this CA (the chain's ca.pem) for the broker's certificate.")
@click.option("--behaviour", "behaviours", multiple=True, metavar="[ID=]BEHAVIOUR",
              help="Run as a Byzantine node with this behaviour (as in scenarios); with several --id, "
                   "ID=BEHAVIOUR names the node (repeatable).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), help="Log verbosity (JSON lines on stderr).")
def node_command(genesis_dir, ids, broker, data, tls_ca, behaviours, log_level):
    """Run consensus node(s) of a chain as this process, talking through an MQTT broker.

    Reads its private key and broker credentials from DATA/ID/, restores its
    ledger and protocol state from DATA/ID/ if it ran before, and runs until
    SIGTERM or SIGINT (a clean shutdown). Logs are JSON lines on stderr. Exits 2
    if the genesis, key or data directory is unusable.
    """
    import asyncio
    import signal

    # A reload asked for (SIGHUP) while the process starts must not end it (SIGHUP's
    # default): ignored until run_nodes installs its handler; each node reads the
    # revocation list as it opens anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from .process import NodeSetupError, run_nodes, setup_logging

    address = _address(broker)
    setup_logging(log_level)
    try:
        code = asyncio.run(run_nodes(Path(genesis_dir), Path(data), list(ids), address,
                                     _behaviours(behaviours, ids), tls_ca))
    except NodeSetupError as exc:
        _fail(str(exc))
    sys.exit(code)


def _behaviours(given: tuple[str, ...], ids: tuple[str, ...]) -> dict[str, str]:
    """node id -> behaviour, from `B` (every --id) or `ID=B` (that one)."""
    out: dict[str, str] = {}
    for text in given:
        node_id, sep, name = text.rpartition("=")
        targets = [node_id] if sep else list(ids)
        if sep and node_id not in ids:
            raise click.BadParameter(f"{node_id} is not one of this process's --id", param_hint="--behaviour")
        for target in targets:
            if target in out:
                raise click.BadParameter(f"{target} is given two behaviours", param_hint="--behaviour")
            out[target] = name
    return out


@click.group("cluster")
def cluster():
    """A chain of real node processes on this machine, through Mosquitto.

    \b
      citychain cluster up taihu --nodes 20     start a broker and 20 node processes
      citychain cluster load                    drive the scenario's workload, report
      citychain cluster status                  each node's height, view and peers
      citychain cluster kill node-03            SIGKILL a node (pause/resume: SIGSTOP/SIGCONT)
      citychain cluster start node-03           restart it: it recovers from its store
      citychain cluster audit --out DIR         collect every ledger and audit them
      citychain cluster compare                 the same load on the cluster and in the simulator
      citychain cluster down                    stop what `up` started
    """


_dir_option = click.option("--dir", "directory", default=DEFAULT_DIR, show_default=True,
                           type=click.Path(file_okay=False), help="The cluster's directory.")


def _cluster(directory: str):
    from .control import Cluster, ClusterError
    try:
        return Cluster.load(Path(directory))
    except ClusterError as exc:
        _fail(str(exc))


@cluster.command()
@click.argument("scenario")
@click.option("--nodes", type=click.IntRange(4, 256), help="Override the scenario's consensus node count.")
@click.option("--seed", type=click.IntRange(0), help="Override the scenario's seed.")
@click.option("--broker", help="Use this running broker (HOST:PORT) instead of starting one.")
@click.option("--tls", is_flag=True, help="TLS on the broker's listener, with a certificate from the chain's CA.")
@click.option("--sites", is_flag=True, help="One broker per site of the scenario, bridged; nodes join their site's.")
@click.option("--per-process", default=1, show_default=True, type=click.IntRange(1),
              help="Nodes per OS process.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="Override one scenario field, e.g. --set consensus.view_change_timeout_ms=2000 (repeatable).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), help="The node processes' log level.")
@_dir_option
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for every node to report.")
def up(scenario, nodes, seed, broker, tls, sites, per_process, sets, log_level, directory, timeout):
    """Start a broker and SCENARIO's nodes as processes; wait until every node reports.

    Writes everything into --dir: cluster.json, genesis/, credentials.json,
    nodes/ID/ (key, broker account, store, log), clients/ID/ and the broker's
    configuration. Exits 2 on a bad scenario or option, 3 if a node does not
    report within --timeout.
    """
    from .control import ClusterError
    from .launch import launch

    overrides = _overrides(sets)
    spec = scenario_for(scenario, nodes, seed, overrides)
    if broker and (sites or tls):
        raise click.UsageError("--broker uses a broker you run: --sites and --tls configure brokers `up` starts")
    try:
        cl = launch(spec, scenario, Path(directory), _address(broker), tls, sites, per_process, log_level)
        cl.seed, cl.overrides = spec.seed, overrides
        cl.save()
    except ClusterError as exc:
        _fail(str(exc))
    _wait_healthy(cl, timeout)


def _overrides(sets: tuple[str, ...]) -> dict:
    from ..bench.sweep import parse_set
    out = {}
    for text in sets:
        try:
            key, values = parse_set(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--set") from None
        if len(values) != 1:
            raise click.BadParameter(f"{text!r}: one value per field for a cluster", param_hint="--set")
        if key in out:
            raise click.BadParameter(f"{key} is set twice", param_hint="--set")
        out[key] = values[0]
    return out


def scenario_for(source: str, nodes: int | None, seed: int | None, overrides: dict):
    """The scenario a cluster runs: the file, --nodes/--seed, then --set (as `up` was given them)."""
    from ..bench.sweep import apply
    from ..scenario import ScenarioError, load_with_overrides

    try:
        spec = load_with_overrides(source, nodes, seed)
        return apply(spec, overrides, source) if overrides else spec
    except ScenarioError as exc:
        _fail(str(exc))


def _load_scenario(cl, transactions: int | None, rate_tps: float | None):
    """The cluster's scenario with a load's --transactions and --rate."""
    spec = scenario_for(cl.scenario, cl.nodes, cl.seed, cl.overrides)
    overrides = {}
    if transactions:
        overrides["transactions"] = transactions
    if rate_tps:
        overrides["rate_tps"] = rate_tps
    if overrides:
        spec = spec.model_copy(update={"workload": spec.workload.model_copy(update=overrides)})
    return spec


def _wait_healthy(cl, timeout: float) -> None:
    import asyncio

    from .control import ClusterError
    from .load import cluster_endpoint
    from .monitor import watch

    members = set(cl.member_ids())
    seen: dict[str, dict] = {}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("nodes"),
                  TimeElapsedColumn(), console=stderr, transient=True, disable=not stderr.is_terminal) as bar:
        task = bar.add_task(f"{cl.chain_id}: starting", total=len(members))

        def seen_one(body, _at):
            seen[body["node"]] = body
            bar.update(task, completed=len(seen))
            return members <= set(seen)

        endpoint = cluster_endpoint(cl, "operator", cl.brokers[0].site)
        try:
            asyncio.run(watch(endpoint, cl.genesis_doc(), seen_one, timeout))
        except Exception as exc:  # noqa: BLE001 - any broker failure is reported, not a traceback
            raise ClusterError(f"cannot read status from the broker: {exc}") from None
    _status_table(cl, seen)
    missing = sorted(members - set(seen))
    if missing:
        _fail(f"{len(missing)} node(s) did not report within {timeout:.0f} s: {', '.join(missing)}; "
              f"see their logs in {cl.node_root}", NOT_LIVE)


def _status_table(cl, latest: dict[str, dict], as_json: bool = False) -> None:
    rows = []
    for proc in cl.processes:
        for node_id in proc.ids:
            body = latest.get(node_id, {})
            rows.append({"node": node_id, "pid": proc.pid, "process": proc.state(), "broker": proc.broker,
                         "height": body.get("height"), "view": body.get("view"),
                         "active": body.get("active"), "peers": len(body.get("peers", [])) if body else None,
                         "drops": sum(body.get("drops", {}).values()) if body else None,
                         "head": (body.get("head") or "")[:12] or None})
    if as_json:
        click.echo(json.dumps({"chain": cl.chain_id, "brokers": [b.address for b in cl.brokers], "nodes": rows}))
        return
    table = Table(title=f"{cl.chain_id}: {len(rows)} nodes, broker {', '.join(b.address for b in cl.brokers)}")
    for col in ("node", "pid", "process", "height", "view", "peers", "drops", "head"):
        table.add_column(col, justify="right" if col not in ("node", "process", "head") else "left")
    for r in rows:
        table.add_row(*["-" if r[c] is None else str(r[c]) for c in
                        ("node", "pid", "process", "height", "view", "peers", "drops", "head")])
    Console().print(table)


@cluster.command()
@_dir_option
@click.option("--wait", default=2.0, show_default=True, help="Seconds to listen for the nodes' status.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(directory, wait, as_json):
    """Each node's process state, height, view and connected peers."""
    from .load import cluster_endpoint
    from .monitor import latest_status

    cl = _cluster(directory)
    running = {i for p in cl.processes if p.state() == "running" for i in p.ids}
    try:
        latest = latest_status(cluster_endpoint(cl, "operator", cl.brokers[0].site), cl.genesis_doc(), wait,
                               expect=running)
    except Exception as exc:  # noqa: BLE001
        _fail(f"cannot reach the broker: {exc}", NOT_LIVE)
    _status_table(cl, latest, as_json)


def _signal_command(name: str, signum: int, doc: str):
    @cluster.command(name, help=doc)
    @click.argument("node_id")
    @_dir_option
    def command(node_id, directory):
        from .control import ClusterError, broker_named, signal_broker, signal_node
        cl = _cluster(directory)
        try:
            broker = broker_named(cl, node_id)
            if broker is not None:
                signal_broker(cl, broker, signum)
                click.echo(f"{name}: broker {broker.address} pid {broker.pid}")
                return
            proc = signal_node(cl, _node_name(node_id), signum)
        except ClusterError as exc:
            _fail(str(exc))
        shared = f" (with {', '.join(i for i in proc.ids if i != _node_name(node_id))})" if len(proc.ids) > 1 else ""
        click.echo(f"{name}: {_node_name(node_id)} pid {proc.pid}{shared}")
    return command


def _node_name(text: str) -> str:
    return f"node-{int(text):02d}" if text.isdigit() else text


_signal_command("kill", signal.SIGKILL, "SIGKILL NODE_ID's process (node-03, or 3): a crash, nothing flushed. "
                "`broker` (or `broker:SITE`) kills the broker.")
_signal_command("pause", signal.SIGSTOP, "SIGSTOP NODE_ID's process: it stops, then lags behind.")
_signal_command("resume", signal.SIGCONT, "SIGCONT NODE_ID's process after `pause`.")


@cluster.command()
@click.argument("node_id")
@click.option("--behaviour", help="Restart NODE_ID (only it, not the others sharing its process) with a "
                                 "Byzantine behaviour.")
@_dir_option
def start(node_id, behaviour, directory):
    """Start NODE_ID's process again after `kill`: it restores from its store and catches up.

    `broker` (or `broker:SITE`) starts a killed broker again on its port; nodes reconnect.
    """
    from .control import ClusterError, broker_named, start_broker, start_node
    cl = _cluster(directory)
    try:
        broker = broker_named(cl, node_id)
        if broker is not None:
            start_broker(cl, broker)
            click.echo(f"start: broker {broker.address} pid {broker.pid}")
            return
        proc = start_node(cl, _node_name(node_id), behaviour)
    except ClusterError as exc:
        _fail(str(exc))
    click.echo(f"start: {', '.join(proc.ids)} pid {proc.pid}")


@cluster.command()
@_dir_option
@click.option("--transactions", type=click.IntRange(1), help="Override the workload's transaction count.")
@click.option("--rate", "rate_tps", type=click.FloatRange(0.1, 100_000), help="Override the offered load (tx/s).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def load(directory, transactions, rate_tps, as_json):
    """Drive the scenario's workload through the broker; throughput, latency, resources.

    Exits 0 if every transaction was answered (f + 1 nodes executed it), 3 if not.
    """
    import asyncio

    from .control import ClusterError
    from .load import drive

    cl = _cluster(directory)
    spec = _load_scenario(cl, transactions, rate_tps)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tx"),
                  TimeElapsedColumn(), console=stderr, transient=True, disable=not stderr.is_terminal) as bar:
        task = bar.add_task(f"load {cl.chain_id}", total=spec.workload.transactions)
        try:
            row = asyncio.run(drive(cl, spec, lambda done, total: bar.update(task, completed=done)))
        except ClusterError as exc:
            _fail(str(exc))
    path = cl.directory / f"load-{cl.loads}.json"
    path.write_text(json.dumps(row, indent=1) + "\n")
    if as_json:
        click.echo(json.dumps(row))
    else:
        _print_load(row, path)
    sys.exit(0 if row["answered"] == row["submitted"] else NOT_LIVE)


def _print_load(r: dict, path: Path) -> None:
    table = Table(title=f"{r['name']}: {r['answered']}/{r['submitted']} answered -> {path}")
    for col in ["n", "tx/s", "p50 ms", "p99 ms", "msgs/block", "Mbit/s/node", "wall s"]:
        table.add_column(col, justify="right")
    table.add_row(str(r["nodes"]), f"{r['throughput_tps']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                  f"{r['messages_per_block']:.0f}", f"{r['bandwidth_mbps_per_node']:.2f}", f"{r['wall_seconds']:.2f}")
    Console().print(table)
    res = Table(title="node processes during the load")
    for col in ("pid", "nodes", "CPU s", "CPU %", "peak MiB"):
        res.add_column(col, justify="right")
    for p in r["resources"]:
        res.add_row(str(p["pid"]), ",".join(p["nodes"]), f"{p['cpu_s']:.2f}", f"{p['cpu_percent']:.0f}",
                    f"{p['peak_rss_mib']:.0f}")
    Console().print(res)


@cluster.command()
@_dir_option
@click.option("--transactions", type=click.IntRange(1), help="Override the workload's transaction count.")
@click.option("--rate", "rate_tps", type=click.FloatRange(0.1, 100_000), help="Override the offered load (tx/s).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Where to write compare.json, compare.png and compare.html (default: DIR/compare-N).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as one JSON object.")
def compare(directory, transactions, rate_tps, out, as_json):
    """Run the cluster's scenario on the cluster and in the simulator; show both, and why they differ.

    Calibrates the simulator on this machine first (Ed25519 sign and verify,
    executing the scenario's transactions, the broker's one-way delay measured
    between two client accounts), drives the load through the broker, simulates
    the same scenario, and compares throughput, latency p50/p95/p99, messages and
    bytes per block. Writes compare.json, compare.png and a self-contained
    compare.html. Exits 0 if every transaction was answered on the cluster, 3 if not.
    """
    from .compare_report import print_table, run_compare
    from .control import ClusterError

    cl = _cluster(directory)
    spec = _load_scenario(cl, transactions, rate_tps)
    target = Path(out) if out else _next_free(cl.directory / "compare")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tx"),
                  TimeElapsedColumn(), console=stderr, transient=True, disable=not stderr.is_terminal) as bar:
        task = bar.add_task(f"compare {cl.chain_id}", total=spec.workload.transactions)
        try:
            doc, paths = run_compare(cl, spec, cl.scenario, target,
                                     lambda done, total: bar.update(task, completed=done),
                                     lambda text: bar.update(task, description=text))
        except (ClusterError, OSError) as exc:
            _fail(str(exc), NOT_LIVE)
    if as_json:
        click.echo(json.dumps(doc))
    else:
        print_table(doc, Console(width=None if sys.stdout.isatty() else 120))
        stderr.print(f"wrote {paths['html']}, {paths['json'].name}, {paths['png'].name}")
    raw = doc["raw"]["cluster"]
    sys.exit(0 if raw["answered"] == raw["submitted"] else NOT_LIVE)


@cluster.command("audit")
@_dir_option
@click.option("--out", type=click.Path(file_okay=False), help="Where to write the export (default: DIR/audit-N).")
@click.option("--json", "as_json", is_flag=True, help="Print the audit report as one JSON object.")
@click.pass_context
def audit_cluster(ctx, directory, out, as_json):
    """Collect every node's ledger (running or not) and run `citychain audit` on them.

    Exits with the codes of `citychain audit`: 0 all checks hold, 1 a safety
    violation (two certified blocks at one height), 2 unreadable stores or
    nothing to audit, 4 a ledger that fails its checks.
    """
    from .collect import collect
    from .control import ClusterError

    cl = _cluster(directory)
    target = Path(out) if out else _next_free(cl.directory / "audit")
    try:
        heights = collect(cl, target)
    except ClusterError as exc:
        _fail(str(exc))
    stderr.print(f"collected {len(heights)} ledgers (heights {min(heights.values())}..{max(heights.values())}) "
                 f"into {target}")
    ctx.invoke(ctx.find_root().command.get_command(ctx, "audit"), out_dir=str(target), as_json=as_json)


def _next_free(stem: Path) -> Path:
    k = 1
    while Path(f"{stem}-{k}").exists():
        k += 1
    return Path(f"{stem}-{k}")


@cluster.command()
@_dir_option
@click.option("--purge", is_flag=True, help="Also delete the cluster's directory (keys, stores, logs).")
def down(directory, purge):
    """Stop every process `up` started (nodes, then brokers) and nothing else."""
    import shutil

    from .control import stop_processes
    cl = _cluster(directory)
    stopped = stop_processes([(p.pid, p.started) for p in cl.processes])
    stopped += stop_processes([(b.pid, b.started) for b in cl.brokers if b.pid is not None])
    click.echo(f"down: stopped {stopped} process(es) of {cl.chain_id}")
    if purge:
        shutil.rmtree(cl.directory)
