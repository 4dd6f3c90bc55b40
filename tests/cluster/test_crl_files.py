"""Adversarial review (rev2): the CA's revocation list as a node process reads it."""

from __future__ import annotations

import datetime
import logging

import pytest
from cryptography.hazmat.primitives import serialization

from citychain.cluster.process import NodeSetupError
from node.genesis import CRL_FILE
from node.identity import NOT_BEFORE, revocation_list
from tests.cluster.test_process_certificates import chain, open_and_deliver, vote

UTC = datetime.timezone.utc


def _write_crl(tmp_path, genesis, revoked, next_update):
    crl = revocation_list(genesis.ca.cert, genesis.ca.key, revoked, issued=NOT_BEFORE, next_update=next_update)
    (tmp_path / "genesis" / CRL_FILE).write_bytes(crl.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize("content", [b"garbage, not a CRL\n", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"])
def test_a_malformed_crl_is_refused_naming_the_crl_file(tmp_path, content):
    """A clear refusal (exit 2 from cluster start), naming revocations.crl, not genesis.json."""
    chain(tmp_path)
    (tmp_path / "genesis" / CRL_FILE).write_bytes(content)
    with pytest.raises(NodeSetupError, match=CRL_FILE):
        open_and_deliver(tmp_path, [])


def test_a_crl_that_is_a_directory_is_refused_naming_the_crl_file(tmp_path):
    chain(tmp_path)
    (tmp_path / "genesis" / CRL_FILE).mkdir()
    with pytest.raises(NodeSetupError, match=CRL_FILE):
        open_and_deliver(tmp_path, [])


def test_a_crl_with_an_unknown_serial_is_taken_and_revokes_nobody(tmp_path):
    genesis = chain(tmp_path)
    _write_crl(tmp_path, genesis, {123456789: NOT_BEFORE}, datetime.datetime(2099, 1, 1, tzinfo=UTC))
    drops = open_and_deliver(tmp_path, [vote(genesis, "node-02")])
    assert "certificate-revoked" not in drops, drops


def test_a_crl_past_its_next_update_is_not_taken_silently(tmp_path, caplog):
    """RFC 5280: a CRL past its nextUpdate is stale; the CA may have revoked more since.
    A node should refuse it or at least say so; it takes it without a word."""
    genesis = chain(tmp_path)
    _write_crl(tmp_path, genesis, {genesis.identities["node-02"].cert.serial_number: NOT_BEFORE},
               datetime.datetime(2026, 1, 2, tzinfo=UTC))  # long past on the wall clock
    caplog.set_level(logging.WARNING)
    try:
        open_and_deliver(tmp_path, [])
    except NodeSetupError:
        return  # refused: fine
    assert any("crl" in r.getMessage().lower() or "revocation" in r.getMessage().lower() for r in caplog.records), \
        [r.getMessage() for r in caplog.records]
