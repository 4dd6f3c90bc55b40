"""A node process checks certificates on the wall clock, with the CA's revocation list
beside genesis.json (no broker needed: messages are handed to the process's node)."""

from __future__ import annotations

import asyncio
import datetime
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from citychain.cluster.process import NodeSetupError, open_node, write_private_key
from citychain.genesis import build_genesis
from citychain.scenario import load_with_overrides
from consensus.messages import Prepare
from node.genesis import CRL_FILE
from node.identity import NOT_BEFORE, CertificateAuthority, revocation_list
from node.signing import Signer
from tests.citychain.hostile_world import reissue

UTC = datetime.timezone.utc


def crl_pem(ca: CertificateAuthority, revoked: dict) -> bytes:
    return ca.revocation_list(revoked).public_bytes(serialization.Encoding.PEM)


def open_and_deliver(root, envelopes) -> dict:
    async def go():
        running = open_node(root / "genesis", root / "data" / "node-01", "node-01", None, asyncio.get_running_loop())
        try:
            for env in envelopes:
                running.deliver(f"citychain/taihu/to/node-01/{env.signer}", json.dumps(env.to_dict()).encode())
            return running.metrics.drops_by_reason()
        finally:
            running.transport.cancel_all_timers("node-01")
            running.node.store.close()
    return asyncio.run(go())


def chain(tmp_path, tweak=None):
    genesis = build_genesis(load_with_overrides("taihu", nodes=4), secret_keys=True)
    if tweak is not None:
        tweak(genesis)
    genesis.write(tmp_path / "genesis")
    write_private_key(tmp_path / "data" / "node-01" / "key.pem", genesis.identities["node-01"].key)
    return genesis


def vote(genesis, member: str):
    return Signer(member, genesis.identities[member].key, genesis.chain_id).sign(Prepare(0, 1, "ab" * 32))


def test_a_process_refuses_revoked_and_expired_members_on_the_wall_clock(tmp_path):
    def tweak(g):
        reissue(g, "node-03", valid=(NOT_BEFORE, datetime.datetime(2026, 1, 2, tzinfo=UTC)))  # long expired
        g.crl = crl_pem(g.ca, {g.identities["node-02"].cert.serial_number: NOT_BEFORE})  # revoked

    genesis = chain(tmp_path, tweak)
    assert (tmp_path / "genesis" / CRL_FILE).exists()
    drops = open_and_deliver(tmp_path, [vote(genesis, "node-02"), vote(genesis, "node-03"), vote(genesis, "node-00")])
    # node-00's vote passes the certificate checks and reaches the replica (which refuses a
    # PREPARE from the primary: the rule after authentication).
    assert drops == {"certificate-revoked": 1, "certificate-expired": 1, "prepare-from-primary": 1}


def test_a_process_will_not_start_on_a_crl_another_key_signed(tmp_path):
    def tweak(g):
        other = CertificateAuthority(g.chain_id, g.doc["name"], Ed25519PrivateKey.generate())
        g.crl = crl_pem(other, {g.identities["node-02"].cert.serial_number: NOT_BEFORE})

    chain(tmp_path, tweak)
    with pytest.raises(NodeSetupError, match="not signed by this chain's CA"):
        open_and_deliver(tmp_path, [])


def test_a_process_whose_own_certificate_another_ca_issued_will_not_start(tmp_path):
    def tweak(g):
        reissue(g, "node-01", ca=CertificateAuthority(g.chain_id, g.doc["name"], Ed25519PrivateKey.generate()))

    chain(tmp_path, tweak)
    with pytest.raises(NodeSetupError, match="node-01: its certificate in the genesis is refused"):
        open_and_deliver(tmp_path, [])


def test_a_reloaded_list_revokes_a_member_of_a_running_node_and_an_older_one_is_refused(tmp_path):
    """node-01 starts with no list; a newer list (CRL number 1) revoking node-02 arrives:
    node-02's next vote is refused. Then the list without it (number 0) is offered:
    refused, so node-02 stays revoked."""
    genesis = chain(tmp_path)
    path = tmp_path / "genesis" / CRL_FILE

    def write(revoked, number):
        crl = revocation_list(genesis.ca.cert, genesis.ca.key, revoked, number=number)
        path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))

    async def go():
        running = open_node(tmp_path / "genesis", tmp_path / "data" / "node-01", "node-01", None,
                            asyncio.get_running_loop())
        try:
            def deliver():
                env = vote(genesis, "node-02")
                running.deliver(f"citychain/taihu/to/node-01/{env.signer}", json.dumps(env.to_dict()).encode())
                return running.metrics.drops_by_reason().get("certificate-revoked", 0)

            assert deliver() == 0
            write({genesis.identities["node-02"].cert.serial_number: NOT_BEFORE}, 1)
            running.heartbeat()  # the file changed: taken at the heartbeat
            assert running.crl.loaded.number == 1
            assert deliver() == 1
            write({}, 0)
            assert running.crl.reload("sighup") is False
            assert deliver() == 2 and running.crl.loaded.number == 1
        finally:
            running.transport.cancel_all_timers("node-01")
            running.node.store.close()
    asyncio.run(go())
