"""``citychain cluster``: a chain of real node processes on this machine, and its broker(s).

Everything a cluster is lives in one directory (default ``./citychain-cluster``):
``cluster.json`` (what was started: brokers and node processes with their PIDs and
start times), ``genesis/`` (the chain's public genesis, as ``run --out`` writes it),
``nodes/ID/`` (each node's private key, broker credentials, store and log),
``clients/ID/`` (each client's key and credentials, for ``cluster load``) and
``broker/`` (the generated Mosquitto configuration). ``cluster down`` signals only
processes recorded there whose PID still has the recorded start time, so it never
stops anything it did not start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from node.identity import Identity

from ..genesis import Genesis, build_genesis
from ..scenario import Scenario
from .process import write_private_key

STATE = "cluster.json"


class ClusterError(RuntimeError):
    """A cluster command cannot do what was asked (no cluster, unknown node, broker failed)."""


@dataclass
class Proc:
    pid: int
    started: float  # psutil create_time: with the PID, names the process uniquely
    ids: list[str]
    log: str
    broker: str  # HOST:PORT the process connects to

    def alive(self) -> bool:
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 0.01
        except psutil.Error:
            return False

    def state(self) -> str:
        if not self.alive():
            return "dead"
        try:
            return "paused" if psutil.Process(self.pid).status() == psutil.STATUS_STOPPED else "running"
        except psutil.Error:
            return "dead"


@dataclass
class BrokerProc:
    site: str
    host: str
    port: int
    pid: int | None  # None: a broker this tool did not start (--broker)
    started: float = 0.0
    conf: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class Cluster:
    directory: Path
    chain_id: str
    scenario: str
    nodes: int
    tls: bool
    brokers: list[BrokerProc] = field(default_factory=list)
    processes: list[Proc] = field(default_factory=list)
    sites: dict[str, str] = field(default_factory=dict)  # member id -> the site (broker) it connects to
    loads: int = 0  # how many `cluster load` runs so far (each draws a fresh workload)
    log_level: str = "INFO"  # of the node processes
    seed: int | None = None  # the scenario as `up` was given it: file, --nodes, --seed, --set
    overrides: dict = field(default_factory=dict)

    # ---- persistence ------------------------------------------------------------

    def save(self) -> None:
        doc = asdict(self)
        doc["directory"] = str(self.directory)
        tmp = self.directory / (STATE + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, self.directory / STATE)

    @classmethod
    def load(cls, directory: Path) -> "Cluster":
        path = Path(directory) / STATE
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise ClusterError(f"no cluster in {directory} (no {STATE}); start one with `citychain cluster up`") from None
        except (OSError, ValueError) as exc:
            raise ClusterError(f"{path}: unreadable ({exc})") from None
        doc["directory"] = Path(directory)
        doc["brokers"] = [BrokerProc(**b) for b in doc["brokers"]]
        doc["processes"] = [Proc(**p) for p in doc["processes"]]
        return cls(**doc)

    # ---- layout -----------------------------------------------------------------

    @property
    def genesis_dir(self) -> Path:
        return self.directory / "genesis"

    @property
    def node_root(self) -> Path:
        return self.directory / "nodes"

    @property
    def client_root(self) -> Path:
        return self.directory / "clients"

    def genesis_doc(self) -> dict:
        return json.loads((self.genesis_dir / "genesis.json").read_text())

    def member_ids(self) -> list[str]:
        return [m["id"] for m in self.genesis_doc()["members"]]

    def process_of(self, node_id: str) -> Proc:
        for proc in self.processes:
            if node_id in proc.ids:
                return proc
        known = ", ".join(self.member_ids())
        raise ClusterError(f"no node {node_id!r} in this cluster; its members are {known}")

    def broker_for(self, member: str) -> BrokerProc:
        site = self.sites.get(member)
        for broker in self.brokers:
            if broker.site == site:
                return broker
        return self.brokers[0]

    def ca_file(self) -> str | None:
        return str(self.genesis_dir / "ca.pem") if self.tls else None


def write_member_files(folder: Path, ident: Identity, username: str, password: str) -> None:
    """A member's private key and broker credentials, readable by its owner only."""
    folder.mkdir(parents=True, exist_ok=True)
    write_private_key(folder / "key.pem", ident.key)
    fd = os.open(folder / "broker.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"username": username, "password": password}, out)


def spawn_node_process(cluster: Cluster, ids: list[str], behaviours: dict[str, str] | None = None) -> Proc:
    broker = cluster.broker_for(ids[0])
    log_path = cluster.node_root / f"{ids[0]}.log"
    # -P: never import from the working directory (a project there may have its own `apps`).
    command = [sys.executable, "-P", "-m", "citychain", "node", "--genesis", str(cluster.genesis_dir),
               "--data", str(cluster.node_root), "--broker", broker.address]
    for node_id in ids:
        command += ["--id", node_id]
    if cluster.tls:
        command += ["--tls-ca", cluster.ca_file()]
    for node_id, name in sorted((behaviours or {}).items()):
        command += ["--behaviour", f"{node_id}={name}"]
    command += ["--log-level", cluster.log_level]
    with open(log_path, "ab") as log:
        child = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                 start_new_session=True)  # not killed by the terminal's Ctrl-C
    started = psutil.Process(child.pid).create_time()
    return Proc(child.pid, started, list(ids), str(log_path), broker.address)


def stop_processes(targets: list[tuple[int, float]], timeout: float = 10.0) -> int:
    """Stop the processes we started: SIGTERM to all (SIGCONT first, for a paused one),
    then wait for all at once (a node takes a moment to close its connection and store;
    twenty in a row would take a minute), SIGKILL whatever is left after ``timeout``.
    A PID whose process start time is not the recorded one is someone else's: left alone.
    Returns how many were ours and running."""
    procs = []
    for pid, started in targets:
        try:
            process = psutil.Process(pid)
            if abs(process.create_time() - started) >= 0.01:
                continue
            process.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
            process.terminate()
            procs.append(process)
        except psutil.Error:
            continue
    _gone, alive = psutil.wait_procs(procs, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    return len(procs)


def _send(pid: int, signum: int) -> None:
    os.kill(pid, signum)
    if signum == signal.SIGKILL:  # return once it is gone, so a `start` right after finds it dead
        try:
            psutil.Process(pid).wait(5)
        except psutil.Error:
            pass


def signal_node(cluster: Cluster, node_id: str, signum: int) -> Proc:
    proc = cluster.process_of(node_id)
    if not proc.alive():
        raise ClusterError(f"{node_id}'s process (pid {proc.pid}) is not running")
    _send(proc.pid, signum)
    return proc


def broker_named(cluster: Cluster, name: str) -> BrokerProc | None:
    """``broker`` (the only or first broker) or ``broker:SITE``; None if ``name`` names no broker."""
    if name == "broker":
        return cluster.brokers[0]
    if name.startswith("broker:"):
        site = name.split(":", 1)[1]
        for broker in cluster.brokers:
            if broker.site == site:
                return broker
        raise ClusterError(f"no broker for site {site!r}; sites: {', '.join(b.site for b in cluster.brokers)}")
    return None


def signal_broker(cluster: Cluster, broker: BrokerProc, signum: int) -> None:
    if broker.pid is None:
        raise ClusterError(f"the broker at {broker.address} was not started by this cluster")
    if not _alive(broker.pid, broker.started):
        raise ClusterError(f"the broker at {broker.address} (pid {broker.pid}) is not running")
    _send(broker.pid, signum)


def start_broker(cluster: Cluster, broker: BrokerProc, timeout: float = 10.0) -> BrokerProc:
    """Start a broker again with the configuration `up` wrote, on the same port: the
    nodes, which retry their connection, come back to it by themselves."""
    if broker.pid is None:
        raise ClusterError(f"the broker at {broker.address} was not started by this cluster")
    if _alive(broker.pid, broker.started):
        raise ClusterError(f"the broker at {broker.address} is running already (pid {broker.pid})")
    conf = Path(broker.conf)
    with open(conf.parent / "mosquitto.log", "ab") as log:
        child = subprocess.Popen(["mosquitto", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        if child.poll() is not None:
            raise ClusterError(f"mosquitto ({conf}) exited with code {child.returncode}; see {conf.parent}/mosquitto.log")
        try:
            socket.create_connection((broker.host, broker.port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise ClusterError(f"the broker did not accept connections on {broker.address} within {timeout:.0f} s")
            time.sleep(0.05)
    broker.pid, broker.started = child.pid, psutil.Process(child.pid).create_time()
    cluster.save()
    return broker


def start_node(cluster: Cluster, node_id: str, behaviour: str | None = None) -> Proc:
    """Start the process of ``node_id`` again (after a kill): it restores from its store."""
    proc = cluster.process_of(node_id)
    if proc.alive():
        raise ClusterError(f"{node_id} is running already (pid {proc.pid})")
    fresh = spawn_node_process(cluster, proc.ids, {node_id: behaviour} if behaviour else None)
    cluster.processes[cluster.processes.index(proc)] = fresh
    cluster.save()
    return fresh


def prepare(scenario: Scenario, source: str, directory: Path, tls: bool) -> tuple[Cluster, Genesis]:
    """Write the genesis, every member's key, and the cluster's state file."""
    if directory.exists() and not directory.is_dir():
        raise ClusterError(f"{directory} is not a directory")
    if directory.exists() and any(directory.iterdir()) and not (directory / STATE).exists():
        # `down --purge` deletes the whole directory: it must hold nothing but the cluster.
        raise ClusterError(f"{directory} is not empty; a cluster needs a directory of its own")
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / STATE).exists():
        old = Cluster.load(directory)
        if any(p.alive() for p in old.processes) or any(b.pid and _alive(b.pid, b.started) for b in old.brokers):
            raise ClusterError(f"a cluster is running in {directory}; `citychain cluster down --dir {directory}` first")
        raise ClusterError(f"{directory} holds a stopped cluster; remove it or choose another --dir")
    genesis = build_genesis(scenario, secret_keys=True)  # a real chain: no key derivable from the seed
    genesis.write(directory / "genesis")
    write_private_key(directory / "ca-key.pem", genesis.ca.key)  # to issue certificates later (TLS for a host)
    for org, key in genesis.org_keys.items():
        write_private_key(directory / "orgs" / f"{org}.pem", key)
    sites = {p.id: p.site for p in genesis.nodes + genesis.observers}
    for client in genesis.clients:
        sites[client.id] = sites[client.gateway]
    cluster = Cluster(directory.resolve(), genesis.chain_id, source, scenario.nodes, tls, sites=sites)
    return cluster, genesis


def _alive(pid: int, started: float) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - started) < 0.01
    except psutil.Error:
        return False
