"""``cluster up``: genesis, credentials, broker(s) and node processes, in that order."""

from __future__ import annotations

from pathlib import Path

import psutil

from ..scenario import Scenario
from .broker import Broker, BrokerError, load_or_create_credentials, site_brokers, start_sites
from .control import BrokerProc, Cluster, ClusterError, prepare, spawn_node_process, write_member_files

CREDENTIALS = "credentials.json"  # every account's password, 0600: the cluster tool's own copy


def launch(spec: Scenario, source: str, directory: Path, broker: tuple[str, int] | None, tls: bool,
           sites: bool, per_process: int, log_level: str = "INFO") -> Cluster:
    cluster, genesis = prepare(spec, source, directory, tls)
    cluster.log_level = log_level
    credentials = load_or_create_credentials(genesis.doc, cluster.directory / CREDENTIALS)
    if broker is not None:
        cluster.brokers = [BrokerProc("all", broker[0], broker[1], None)]
        cluster.sites = {m: "all" for m in cluster.sites}
    else:
        names = sorted({p.site for p in genesis.nodes + genesis.observers}) if sites else []
        try:
            if len(names) > 1:
                brokers, credentials = site_brokers(cluster.directory / "brokers", credentials, names, tls=tls,
                                                    ca=genesis.ca)
                credentials.save(cluster.directory / CREDENTIALS)
                start_sites(brokers)
            else:
                brokers = {"all": Broker(cluster.directory / "broker", credentials, tls=tls, ca=genesis.ca).start()}
                cluster.sites = {m: "all" for m in cluster.sites}
        except BrokerError as exc:
            raise ClusterError(f"the broker did not start: {exc}") from None
        cluster.brokers = [BrokerProc(site, b.host, b.port, b.pid, psutil.Process(b.pid).create_time(),
                                      str(b.conf_path)) for site, b in brokers.items()]
    for ident in genesis.identities.values():
        folder = (cluster.client_root if ident.role == "client" else cluster.node_root) / ident.id
        write_member_files(folder, ident, ident.id, credentials.password(ident.id))
    cluster.save()
    members = [p.id for p in genesis.nodes + genesis.observers]
    try:
        for i in range(0, len(members), per_process):
            cluster.processes.append(spawn_node_process(cluster, members[i:i + per_process]))
    finally:
        cluster.save()
    return cluster
