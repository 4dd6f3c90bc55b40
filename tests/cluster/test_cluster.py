"""Real node processes through a real Mosquitto, driven by the `citychain cluster` commands a user runs.

These tests start processes and a broker on free loopback ports and stop them; they are
never skipped. They share one pytest-xdist worker (``xdist_group``), so two clusters
never compete for the two cores at once. A loaded CI machine is slow, not wrong: the
clusters here use a 2 s view-change timeout and moderate load, and the assertions are
about what happened (every transaction answered, every node holding every block), not
about how fast.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.xdist_group("cluster")

TIMEOUT = "consensus.view_change_timeout_ms=2000"


def cli(*args, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "citychain", *map(str, args)], capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"citychain {' '.join(map(str, args))} exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def start_load(directory: Path, transactions: int, rate: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "citychain", "cluster", "load", "--dir", str(directory),
                             "--transactions", str(transactions), "--rate", str(rate), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_load(proc: subprocess.Popen, timeout: float = 300) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"cluster load exited {proc.returncode}:\n{out[-2000:]}\n{err[-3000:]}"
    return json.loads(out)


def load_answered(directory: Path, transactions: int, rate: int) -> dict:
    """`cluster load` in the foreground, which must answer every transaction."""
    row = json.loads(cli("cluster", "load", "--dir", directory, "--transactions", transactions, "--rate", rate,
                         "--json").stdout)
    assert row["answered"] == row["submitted"] == transactions
    return row


def status(directory: Path) -> list[dict]:
    return json.loads(cli("cluster", "status", "--dir", directory, "--json", "--wait", "3").stdout)["nodes"]


def wait_converged(directory: Path, timeout: float = 120) -> list[dict]:
    """Until every node reports the same height and head (state transfer has caught everyone up)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = status(directory)
        heads = {(n["height"], n["head"]) for n in nodes}
        if len(heads) == 1 and None not in next(iter(heads)):
            return nodes
        if time.monotonic() > deadline:
            raise AssertionError(f"heads did not converge within {timeout:.0f} s: {nodes}")
        time.sleep(1)


def audit(directory: Path, out: Path) -> dict:
    """`cluster audit`, which must exit 0: every ledger valid, no two certified blocks at a height."""
    report = json.loads(cli("cluster", "audit", "--dir", directory, "--out", out, "--json").stdout)
    assert report["agreement"] and not report["safety_violations"]
    return report


def ledger_txs(export: Path) -> dict[str, set[str]]:
    """Per node of an exported cluster: the digests of every transaction its ledger holds."""
    held = {}
    for path in sorted((export / "ledgers").glob("*.jsonl")):
        digests = set()
        for line in path.read_text().splitlines():
            for tx in json.loads(line)["txs"]:
                digests.add(hashlib.sha256(tx["data"].encode("ascii")).hexdigest())
        held[path.stem] = digests
    return held


@pytest.fixture(scope="module")
def twenty(tmp_path_factory, mosquitto):
    directory = tmp_path_factory.mktemp("twenty") / "cluster"
    cli("cluster", "up", "taihu", "--nodes", 20, "--dir", directory, "--set", TIMEOUT, "--timeout", 180)
    yield directory
    cli("cluster", "down", "--dir", directory, check=False)
    assert not any(p.is_running() and "citychain" in " ".join(p.cmdline()) and str(directory) in " ".join(p.cmdline())
                   for p in psutil.process_iter() if _readable(p)), "cluster down left a process running"


def _readable(p: psutil.Process) -> bool:
    try:
        p.cmdline()
        return True
    except psutil.Error:
        return False


def test_twenty_node_processes_commit_a_workload_with_agreement(twenty, tmp_path):
    row = finish_load(start_load(twenty, 200, 100))
    assert row["answered"] == row["submitted"] == 200
    assert row["nodes"] == 20 and row["f"] == 6
    assert len(row["resources"]) == 20 and all(r["peak_rss_mib"] > 0 and r["cpu_s"] > 0 for r in row["resources"])
    # bench's unit, over the load's wall-clock window
    assert row["bandwidth_mbps_per_node"] == pytest.approx(8 * row["bytes_per_node"] / row["wall_seconds"] / 1e6, rel=0.01)
    wait_converged(twenty)
    audit(twenty, tmp_path / "export")
    for node, txs in ledger_txs(tmp_path / "export").items():
        assert set(row["answered_txs"]) <= txs, f"{node} lacks committed transactions"


def test_f_nodes_killed_under_load_lose_nothing_and_catch_up(twenty, tmp_path):
    victims = ["node-00", "node-03", "node-07", "node-10", "node-14", "node-18"]  # f = 6, the primary among them
    load = start_load(twenty, 300, 60)
    time.sleep(2)
    for node in victims:
        cli("cluster", "kill", node, "--dir", twenty)
    assert {n["node"] for n in status(twenty) if n["process"] == "dead"} == set(victims)
    time.sleep(3)
    for node in victims:
        cli("cluster", "start", node, "--dir", twenty)
    row = finish_load(load)
    assert row["answered"] == row["submitted"] == 300
    nodes = wait_converged(twenty)
    assert all(n["process"] == "running" for n in nodes)
    audit(twenty, tmp_path / "export")
    held = ledger_txs(tmp_path / "export")
    for node, txs in held.items():
        assert set(row["answered_txs"]) <= txs, f"{node} lacks committed transactions"


def test_a_broker_killed_and_restarted_mid_load_is_survived(twenty, tmp_path):
    load = start_load(twenty, 200, 50)
    time.sleep(1.5)
    cli("cluster", "kill", "broker", "--dir", twenty)
    time.sleep(1)
    cli("cluster", "start", "broker", "--dir", twenty)
    row = finish_load(load)
    assert row["answered"] == row["submitted"] == 200
    wait_converged(twenty)
    audit(twenty, tmp_path / "export")


def test_nodes_on_bridged_site_brokers_over_tls_agree(tmp_path, mosquitto):
    directory = tmp_path / "sites"
    cli("cluster", "up", "taihu", "--nodes", 4, "--sites", "--tls", "--dir", directory, "--set", TIMEOUT)
    try:
        state = json.loads((directory / "cluster.json").read_text())
        assert len(state["brokers"]) >= 2, "taihu's 4 nodes sit in more than one site"
        assert len({p["broker"] for p in state["processes"]}) >= 2, "nodes connect to their own site's broker"
        conf = Path(state["brokers"][1]["conf"]).read_text()
        assert "connection " in conf and "address 127.0.0.1:" in conf  # a Mosquitto bridge to the hub
        load_answered(directory, 60, 30)
        audit(directory, tmp_path / "export")
    finally:
        cli("cluster", "down", "--dir", directory, check=False)


def test_node_command_refuses_a_wrong_key_and_stops_cleanly_on_sigterm(tmp_path, mosquitto):
    directory = tmp_path / "one"
    cli("cluster", "up", "taihu", "--nodes", 4, "--dir", directory)
    try:
        state = json.loads((directory / "cluster.json").read_text())
        broker = state["brokers"][0]
        address = f"{broker['host']}:{broker['port']}"
        # node-01's key offered as node-02's: refused before anything is sent, exit 2
        data = tmp_path / "data"
        (data / "node-02").mkdir(parents=True)
        (data / "node-02" / "key.pem").write_bytes((directory / "nodes" / "node-01" / "key.pem").read_bytes())
        (data / "node-02" / "broker.json").write_bytes((directory / "nodes" / "node-02" / "broker.json").read_bytes())
        bad = cli("node", "--genesis", directory / "genesis", "--id", "node-02", "--broker", address, "--data", data,
                  check=False, timeout=60)
        assert bad.returncode == 2 and "is not the key of node-02" in bad.stderr
        # SIGTERM: a clean stop with a last structured log line (the process is not our
        # child, so its exit code is not ours to read)
        proc = next(p for p in state["processes"] if p["ids"] == ["node-03"])
        node = psutil.Process(proc["pid"])
        node.send_signal(signal.SIGTERM)
        node.wait(30)
        last = json.loads(Path(proc["log"]).read_text().splitlines()[-1])
        assert last["event"] == "stopped" and last["node"] == "node-03"
    finally:
        cli("cluster", "down", "--dir", directory, check=False)


def test_a_byzantine_process_sharing_a_process_with_another_node_cannot_stop_the_chain(tmp_path, mosquitto):
    """--per-process 2 puts two nodes in each process; the primary's process is restarted
    as an equivocating primary (any simulator behaviour can be given to a process)."""
    directory = tmp_path / "byz"
    cli("cluster", "up", "taihu", "--nodes", 4, "--per-process", 2, "--dir", directory, "--set", TIMEOUT)
    try:
        state = json.loads((directory / "cluster.json").read_text())
        assert [p["ids"] for p in state["processes"]] == [["node-00", "node-01"], ["node-02", "node-03"]]
        cli("cluster", "kill", "node-00", "--dir", directory)
        cli("cluster", "start", "node-00", "--behaviour", "equivocate", "--dir", directory)
        deadline = time.monotonic() + 60
        while True:  # the restarted process logs how each of its nodes started
            started = [json.loads(line) for line in (directory / "nodes" / "node-00.log").read_text().splitlines()
                       if '"started"' in line]
            if len(started) == 4 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert {(s["node"], s["behaviour"]) for s in started[2:]} == {("node-00", "equivocate"), ("node-01", None)}
        load_answered(directory, 80, 40)
        audit(directory, tmp_path / "export")
    finally:
        cli("cluster", "down", "--dir", directory, check=False)
