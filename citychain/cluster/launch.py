"""``cluster up``: genesis, credentials, broker(s) and node processes, in that order."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import psutil

from ..scenario import Scenario
from . import tempbroker
from .control import BrokerProc, Cluster, ClusterError, prepare, spawn_node_process, write_member_files


def launch(spec: Scenario, source: str, directory: Path, broker: tuple[str, int] | None, tls: bool,
           sites: bool, per_process: int) -> Cluster:
    cluster, genesis = prepare(spec, source, directory, tls)
    passwords = {ident: secrets.token_urlsafe(18) for ident in genesis.identities}
    passwords["operator"] = secrets.token_urlsafe(18)
    for ident in genesis.identities.values():
        folder = (cluster.client_root if ident.role == "client" else cluster.node_root) / ident.id
        write_member_files(folder, ident, ident.id, passwords[ident.id])
    fd = os.open(cluster.directory / "operator.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"username": "operator", "password": passwords["operator"]}, out)
    if broker is not None:
        cluster.brokers = [BrokerProc("all", broker[0], broker[1], None)]
    else:
        pid, port, conf = tempbroker.start(cluster.directory / "broker")
        cluster.brokers = [BrokerProc("all", "127.0.0.1", port, pid, psutil.Process(pid).create_time(), conf)]
    cluster.sites = {m: "all" for m in cluster.sites}
    cluster.save()
    members = [p.id for p in genesis.nodes + genesis.observers]
    try:
        for i in range(0, len(members), per_process):
            cluster.processes.append(spawn_node_process(cluster, members[i:i + per_process]))
    finally:
        cluster.save()
    return cluster
