"""Issue 12, a flood through Mosquitto: a member floods one node process with validly signed
messages and junk while clients submit; the node keeps committing, its RSS stays bounded,
and the flood is counted as `rate-limited`. A 4-node cluster, as `citychain cluster up`."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import aiomqtt
import psutil
import pytest

from citychain.cluster import topics
from citychain.cluster.control import Cluster
from citychain.cluster.endpoint import Endpoint, read_credentials
from citychain.cluster.process import load_private_key
from consensus.messages import Commit, Prepare
from node.signing import Signer
from tests.cluster.test_cluster import TIMEOUT, cli, finish_load, start_load, status

pytestmark = pytest.mark.xdist_group("cluster")

ATTACKER, VICTIM = "node-03", "node-01"
FLOOD = 60_000


def _flood(directory: Path, payloads: list[bytes], done: threading.Event, sent: list) -> None:
    cluster = Cluster.load(directory)
    user, password = read_credentials(cluster.node_root / ATTACKER / "broker.json")
    broker = cluster.broker_for(ATTACKER)
    endpoint = Endpoint(broker.host, broker.port, user, password, cluster.ca_file())
    topic = topics.direct(cluster.chain_id, VICTIM, ATTACKER)

    async def go():
        async with aiomqtt.Client(**endpoint.client_args(), identifier=f"{cluster.chain_id}/{ATTACKER}-flood",
                                  protocol=aiomqtt.ProtocolVersion.V5) as client:
            for i in range(FLOOD):
                await client.publish(topic, payloads[i % len(payloads)], qos=0)
                sent[0] += 1
                if i % 500 == 0:
                    await asyncio.sleep(0)
    try:
        asyncio.run(go())
    finally:
        done.set()


@pytest.mark.slow
def test_a_node_process_flooded_through_the_broker_keeps_committing_with_bounded_memory(tmp_path, mosquitto):
    directory = tmp_path / "cluster"
    cli("cluster", "up", "taihu", "--nodes", 4, "--dir", directory, "--set", TIMEOUT, "--timeout", 180)
    try:
        cluster = Cluster.load(directory)
        key = load_private_key(cluster.node_root / ATTACKER / "key.pem")
        signer = Signer(ATTACKER, key, cluster.chain_id)
        payloads = [json.dumps(signer.sign((Prepare if i % 2 else Commit)(0, 1 + i % 20, f"{i:064x}")).to_dict())
                    .encode() for i in range(3000)]
        payloads += [b'{"data":"junk","sig":"' + b"00" * 64 + b'"}', b"\xff" * 300]
        victim = psutil.Process(cluster.process_of(VICTIM).pid)
        before = victim.memory_info().rss
        load = start_load(directory, 150, 30)
        done, sent = threading.Event(), [0]
        flooder = threading.Thread(target=_flood, args=(directory, payloads, done, sent), daemon=True)
        flooder.start()
        peak = before
        while not done.is_set():
            peak = max(peak, victim.memory_info().rss)
            time.sleep(0.2)
        for _ in range(10):  # the inbox drains after the flood
            peak = max(peak, victim.memory_info().rss)
            time.sleep(0.2)
        row = finish_load(load)
        assert sent[0] == FLOOD
        assert row["answered"] == row["submitted"] == 150
        drops = next(n for n in status(directory) if n["node"] == VICTIM)["drops"]  # (all reasons)
        assert drops > FLOOD // 2, drops  # refused on arrival (admission), never queued
        growth = (peak - before) / 2**20
        print(f"victim RSS {before / 2**20:.0f} MiB before, peak {peak / 2**20:.0f} MiB; drops {drops}")
        assert growth < 100, f"RSS grew {growth:.0f} MiB under the flood"
    finally:
        cli("cluster", "down", "--dir", directory, check=False)
