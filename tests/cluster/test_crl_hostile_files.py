"""Adversarial review (revbt): the revocation list a running node reloads, against the
threat its own docs name ("an attacker with write access to the directory, or a stale
copy", node/revocation.py). No broker: the node is opened and driven in-process."""

from __future__ import annotations

import json
import os
import threading
import tracemalloc

from cryptography.hazmat.primitives import serialization

from node.genesis import CRL_FILE
from node.identity import NOT_BEFORE, revocation_list
from tests.cluster.test_process import run_node
from tests.cluster.test_process_certificates import chain, vote


def _write(path, genesis, revoked, number):
    crl = revocation_list(genesis.ca.cert, genesis.ca.key, revoked, number=number)
    tmp = path.with_name(path.name + ".w")
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, path)


def _with_node(tmp_path, body):
    return run_node((None, tmp_path), body)


def _revoked_drops(running, genesis) -> int:
    env = vote(genesis, "node-02")
    running.deliver(f"citychain/taihu/to/node-01/{env.signer}", json.dumps(env.to_dict()).encode())
    return running.metrics.drops_by_reason().get("certificate-revoked", 0)


def test_a_crl_replaced_by_a_fifo_does_not_freeze_the_node(tmp_path):
    """revocations.crl replaced by a named pipe: the heartbeat sees the inode change and
    reads the file, and open() of a FIFO blocks until a writer comes. The heartbeat runs
    on the event loop, so every node of the process would stop (no votes, no timers). It
    must be refused as not a regular file, at once."""
    chain(tmp_path)
    path = tmp_path / "genesis" / CRL_FILE

    def body(running):
        os.mkfifo(path)
        done = threading.Event()

        def beat():
            running.crl.check()
            done.set()

        worker = threading.Thread(target=beat, daemon=True)
        worker.start()
        finished = done.wait(3)
        if not finished:  # release the blocked reader so the test process can end
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
            worker.join(5)
        return finished

    assert _with_node(tmp_path, body), "the heartbeat blocked on a FIFO named revocations.crl"


def test_a_huge_crl_file_is_refused_without_reading_it_into_memory(tmp_path):
    """A 256 MiB (sparse) file dropped in as revocations.crl: the node must refuse it by its
    size, not read it whole on the event loop (bounded work and memory per input)."""
    chain(tmp_path)
    path = tmp_path / "genesis" / CRL_FILE

    def body(running):
        tmp = path.with_name("big")
        with open(tmp, "wb") as f:
            f.truncate(256 << 20)
        os.replace(tmp, path)
        tracemalloc.start()
        try:
            running.crl.check()
            _cur, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak

    peak = _with_node(tmp_path, body)
    assert peak < 16 << 20, f"the heartbeat allocated {peak >> 20} MiB reading a 256 MiB revocations.crl"


def test_a_restart_does_not_bring_back_a_member_an_older_list_unrevokes(tmp_path):
    """The node holds list 2 (node-02 revoked). Someone puts the older list 1 (CA-signed,
    node-02 not in it) in the genesis directory: the running node refuses it, as
    docs/deployment.md promises ("a stale or forged copy cannot bring a revoked member
    back"). Then the node restarts (a crash, an upgrade): it reads whatever file is there
    and node-02 is back. The newest list a node took must survive its restart."""
    genesis = chain(tmp_path)
    path = tmp_path / "genesis" / CRL_FILE
    serial = genesis.identities["node-02"].cert.serial_number
    _write(path, genesis, {serial: NOT_BEFORE}, 2)

    def first(running):
        assert _revoked_drops(running, genesis) == 1
        _write(path, genesis, {}, 1)
        running.heartbeat()
        assert running.crl.loaded.number == 2  # refused while running
        return _revoked_drops(running, genesis)

    assert _with_node(tmp_path, first) == 2
    assert _with_node(tmp_path, lambda running: _revoked_drops(running, genesis)) == 1, \
        "after a restart the older list un-revoked node-02"


def test_a_reload_asked_for_while_the_process_starts_does_not_end_it(tmp_path):
    """SIGHUP asks a node process to reload the revocation list. Its default action ends
    the process, and the handler used to be installed only after every node had opened:
    a reload asked for during start-up killed the node (review revbt). Here the process
    sends itself SIGHUP while its node opens. No broker: the node opens, then keeps
    trying to connect, which is enough."""
    import signal
    import socket
    import subprocess
    import sys
    import textwrap
    import time

    chain(tmp_path)
    (tmp_path / "data" / "node-01" / "broker.json").write_text(json.dumps({"username": "node-01", "password": "x"}))
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = textwrap.dedent(f"""
        import os, signal, sys
        import citychain.cluster.process as process
        from citychain.cli import main
        real = process.open_node
        def opening(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGHUP)  # a reload asked for while the node opens
            opened = real(*args, **kwargs)
            print("opened", flush=True)
            return opened
        process.open_node = opening
        sys.argv = ["citychain", "node", "--genesis", {str(tmp_path / "genesis")!r}, "--id", "node-01",
                    "--broker", "127.0.0.1:{port}", "--data", {str(tmp_path / "data")!r}]
        main()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "opened", proc.communicate(timeout=30)
        time.sleep(0.5)
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, out
