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
