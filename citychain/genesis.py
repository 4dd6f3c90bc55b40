"""Building a chain's genesis from a scenario: its CA, every member's key and
certificate, where each runs, and genesis.json.

In a simulation every key is derived from the scenario's seed, so a run is
reproducible (and its signatures prove nothing against anyone who knows the seed);
a real chain (``citychain cluster``) asks for secret keys. A node only reads a
genesis and checks it (``node.genesis``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.genesis import CRL_FILE, calendar_ns, genesis_bytes, genesis_hash, membership_from_doc
from node.identity import NOT_BEFORE, CertificateAuthority, Identity, cert_pem, derive_key
from node.membership import Membership
from node.state import empty_state_root

from .layout import ClientPlacement, NodePlacement, place_clients, place_nodes, place_observers
from .scenario import Scenario
from .sealing import org_key, public_hex

# The calendar date of virtual time 0 in a simulation: certificate validity and
# revocation dates are judged at SIM_EPOCH + virtual time, so a run stays a pure
# function of (scenario, seed). It is the day the simulator's certificates start.
SIM_EPOCH = NOT_BEFORE


@dataclass
class Genesis:
    doc: dict  # exactly what genesis.json holds
    ca: CertificateAuthority
    nodes: list[NodePlacement]
    clients: list[ClientPlacement]
    observers: list[NodePlacement]
    identities: dict[str, Identity]
    org_keys: dict[str, X25519PrivateKey]  # each department's key-agreement key (data sharing)
    crl: bytes | None = None  # the CA's revocation list (PEM), if it revoked anyone: revocations.crl

    @property
    def chain_id(self) -> str:
        return self.doc["chain_id"]

    @property
    def hash(self) -> str:
        return genesis_hash(self.doc)

    @property
    def replicas(self) -> tuple[str, ...]:
        return tuple(m["id"] for m in self.doc["members"] if m["role"] == "consensus")

    def membership(self) -> Membership:
        """The member table a simulated node checks messages against: certificate
        validity and revocations at virtual time, virtual time 0 being ``SIM_EPOCH``."""
        return membership_from_doc(self.doc, crl=self.crl, epoch_ns=calendar_ns(SIM_EPOCH))

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "ca.pem").write_text(cert_pem(self.ca.cert))
        for ident in self.identities.values():
            folder = out if ident.role != "client" else out / "clients"
            folder.mkdir(exist_ok=True)
            (folder / f"{ident.id}.pem").write_text(cert_pem(ident.cert))
        # Canonical JSON and nothing else: the genesis hash is SHA-256 of these exact bytes.
        (out / "genesis.json").write_bytes(genesis_bytes(self.doc))
        if self.crl is not None:
            (out / CRL_FILE).write_bytes(self.crl)


def build_genesis(scenario: Scenario, secret_keys: bool = False) -> Genesis:
    """The chain's genesis. Keys derive from the scenario's seed (a simulated run is a
    pure function of scenario and seed, and anyone who knows the seed can sign as any
    member); with ``secret_keys`` every key is fresh from the operating system's random
    source instead, as a real chain's must be (``citychain cluster``)."""
    chain = scenario.chain
    seed = scenario.seed

    def signing_key(name: str) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.generate() if secret_keys else derive_key(seed, chain.id, name)

    def agreement_key(org: str) -> X25519PrivateKey:
        return X25519PrivateKey.generate() if secret_keys else org_key(seed, chain.id, org)

    ca = CertificateAuthority(chain.id, chain.name, signing_key("ca"))
    nodes = place_nodes(scenario)
    observers = place_observers(scenario)
    clients = place_clients(scenario, nodes)
    identities: dict[str, Identity] = {}
    for ident, org, role in ([(n.id, n.org, "consensus") for n in nodes] + [(o.id, o.org, "observer") for o in observers]
                             + [(c.id, c.org, "client") for c in clients]):
        key = signing_key(ident)
        identities[ident] = Identity(ident, org, role, key, ca.issue(ident, org, role, key.public_key()))
    org_keys = {o.id: agreement_key(o.id) for o in scenario.organisations}
    c = scenario.consensus
    doc = {
        "chain_id": chain.id,
        "name": chain.name,
        "ca": cert_pem(ca.cert),
        # Each department's X25519 key, for the data-sharing app's key wrapping.
        "organisations": [{"id": o.id, "name": o.name, "x25519": public_hex(org_keys[o.id])}
                          for o in scenario.organisations],
        "members": [{"id": i.id, "org": i.org, "role": i.role, "cert": cert_pem(i.cert)}
                    for i in identities.values() if i.role != "client"],
        "clients": [{"id": i.id, "org": i.org, "role": i.role, "cert": cert_pem(i.cert)}
                    for i in identities.values() if i.role == "client"],
        "consensus": {"block_size": c.block_size, "batch_timeout_ns": int(c.batch_timeout_ms * 1e6),
                      "checkpoint_interval": c.checkpoint_interval, "watermark_window": c.watermark_window,
                      "view_change_timeout_ns": int(c.view_change_timeout_ms * 1e6),
                      "sync_interval_ns": int(c.sync_interval_ms * 1e6),
                      "max_pending": c.max_pending or 20 * c.block_size,
                      "max_clock_skew_ns": int(c.max_clock_skew_ms * 1e6)},
        "state_root": empty_state_root(),
        "apps": scenario.apps,  # the applications' settings (policies) are part of the chain's rules
    }
    genesis = Genesis(doc, ca, nodes, clients, observers, identities, org_keys)
    if scenario.revocations:
        genesis.crl = revocation_list(genesis, {r.member: r.at_ms for r in scenario.revocations})
    return genesis


def revocation_list(genesis: Genesis, revoked_ms: dict[str, float]) -> bytes:
    """The CA's CRL (PEM) revoking each scenario member (node-N, observer-N, client-N)
    from its virtual time in ms on (SIM_EPOCH + that time; X.509 dates are in seconds)."""
    placed = {"node": genesis.nodes, "observer": genesis.observers, "client": genesis.clients}
    revoked = {}
    for ref, at_ms in revoked_ms.items():
        kind, index = ref.split("-")
        member = placed[kind][int(index)].id
        revoked[genesis.identities[member].cert.serial_number] = SIM_EPOCH + datetime.timedelta(milliseconds=at_ms)
    return genesis.ca.revocation_list(revoked).public_bytes(serialization.Encoding.PEM)
