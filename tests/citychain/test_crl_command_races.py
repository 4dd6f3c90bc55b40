"""Adversarial review (revbt): `citychain crl revoke` read-modify-writes revocations.crl.
Two revocations at once (two operators, a script revoking several members in parallel)
must not lose one: a lost revocation is worse than a refused command, and the two lists
carry the same CRL number, so a node that took one refuses the other for good
("CRL number 1 is not above the loaded list's 1"): honest nodes judge requests with
different lists, and nothing ever reconciles them."""

from __future__ import annotations

import datetime
import threading

import citychain.crl as crl_module
from citychain.cluster.process import write_private_key
from citychain.genesis import build_genesis
from citychain.scenario import load_with_overrides
from node.genesis import CRL_FILE
from node.revocation import parse_crl

UTC = datetime.timezone.utc


def test_two_revocations_at_once_keep_both(tmp_path, monkeypatch):
    """Interleaving: A reads the (absent) list, then, before A writes, B reads the same
    list, signs number 1 naming node-02 and writes it; A signs number 1 naming node-03 and
    writes it over B's. Driven exactly: B runs (in a thread) when A signs its list."""
    built = build_genesis(load_with_overrides("taihu", nodes=4))
    built.write(tmp_path / "genesis")
    write_private_key(tmp_path / "ca-key.pem", built.ca.key)
    g = tmp_path / "genesis"
    now = datetime.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    real = crl_module.revocation_list
    state = {"b": None}

    def interleaved(*args, **kwargs):
        if state["b"] is None:
            state["b"] = threading.Thread(target=crl_module.revoke, args=(g, "node-02", now, None, now))
            state["b"].start()
            state["b"].join(1.0)  # B done, or B waits for A (a lock): either way A goes on
        return real(*args, **kwargs)

    monkeypatch.setattr(crl_module, "revocation_list", interleaved)
    crl_module.revoke(g, "node-03", now, None, now)
    state["b"].join(10)
    assert not state["b"].is_alive()
    final = parse_crl((g / CRL_FILE).read_bytes(), built.ca.cert)
    serials = {built.identities[m].cert.serial_number: m for m in ("node-02", "node-03")}
    named = sorted(serials[s] for s in final.entries if s in serials)
    assert named == ["node-02", "node-03"], f"list number {final.number} names only {named}"
    assert final.number == 2


def test_show_and_revoke_refuse_a_fifo_rather_than_hang(tmp_path):
    """revocations.crl replaced by a named pipe: `crl show` and `crl revoke` must exit 2
    (not a revocation list), not block forever opening it."""
    import os
    import subprocess
    import sys

    built = build_genesis(load_with_overrides("taihu", nodes=4))
    built.write(tmp_path / "genesis")
    write_private_key(tmp_path / "ca-key.pem", built.ca.key)
    os.mkfifo(tmp_path / "genesis" / CRL_FILE)
    for args in (["show"], ["revoke", "--member", "node-02"]):
        try:
            done = subprocess.run([sys.executable, "-m", "citychain", "crl", *args, "--genesis",
                                   str(tmp_path / "genesis")], capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"crl {args[0]} hung on a FIFO named revocations.crl") from None
        assert done.returncode == 2 and "revocations.crl" in done.stderr, (done.returncode, done.stderr)


def test_revoke_after_a_rolled_back_file_neither_reuses_a_number_nor_drops_an_entry(tmp_path):
    """The CA revokes node-02 (list 1) then node-03 (list 2); the genesis directory's file
    is then rolled back to list 1 (a restored backup, a stale copy synced over it: the
    running nodes refuse it and keep list 2). The operator revokes client-1: the command
    builds on the file it finds and writes list 2 again, now naming node-02 and client-1.
    Every node holding list 2 refuses it ("CRL number 2 is not above the loaded list's 2"),
    so client-1 is never revoked on a running node, and node-03's revocation is gone from
    the file (a node that starts from it takes node-03 back). The CA must number from,
    and extend, the newest list it issued, not whatever file it finds."""
    built = build_genesis(load_with_overrides("taihu", nodes=4))
    built.write(tmp_path / "genesis")
    write_private_key(tmp_path / "ca-key.pem", built.ca.key)
    g = tmp_path / "genesis"
    now = datetime.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    crl_module.revoke(g, "node-02", now, None, now)
    first = (g / CRL_FILE).read_bytes()
    crl_module.revoke(g, "node-03", now, None, now + datetime.timedelta(seconds=5))
    (g / CRL_FILE).write_bytes(first)  # rolled back
    client = built.clients[0].id
    done = crl_module.revoke(g, client, now, None, now + datetime.timedelta(seconds=10))
    serials = {built.identities[m].cert.serial_number: m for m in ("node-02", "node-03", client)}
    named = sorted(serials[s] for s in done.entries if s in serials)
    assert done.number == 3 and named == sorted(["node-02", "node-03", client]), (done.number, named)
