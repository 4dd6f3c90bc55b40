"""Permissioned identities: a chain's root CA issues every member an X.509 certificate.

In a simulation every key derives from (seed, chain id, name), so a run is
reproducible; Ed25519 signatures are deterministic, so certificates are too.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Fixed validity so that certificates are a pure function of the seed.
NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2036, 1, 1, tzinfo=datetime.timezone.utc)

ROLES = ("consensus", "observer", "client")


def derive_key(seed: int, chain_id: str, name: str) -> Ed25519PrivateKey:
    material = hashlib.sha256(f"citychain-key/v1/{seed}/{chain_id}/{name}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(material)


def _serial(*parts: str) -> int:
    # RFC 5280: positive, at most 20 octets.
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:16], "big") | 1


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def public_key_of(cert: x509.Certificate) -> Ed25519PublicKey:
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("certificate key is not Ed25519")
    return key


@dataclass(frozen=True)
class Identity:
    """A member's name, organisation, role, private key and CA-issued certificate."""

    id: str
    org: str
    role: str
    key: Ed25519PrivateKey
    cert: x509.Certificate


class CertificateAuthority:
    def __init__(self, chain_id: str, chain_name: str, key: Ed25519PrivateKey):
        self.chain_id = chain_id
        self.key = key
        name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, chain_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{chain_id} root CA"),
        ])
        public = key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public)
            .serial_number(_serial(chain_id, "ca"))
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, None)  # Ed25519 takes no separate hash algorithm
        )

    def issue(self, member_id: str, org: str, role: str, public: Ed25519PublicKey,
              valid: tuple[datetime.datetime, datetime.datetime] = (NOT_BEFORE, NOT_AFTER)) -> x509.Certificate:
        """A member certificate, valid from ``valid[0]`` to ``valid[1]`` (inclusive, RFC 5280)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, member_id),
        ])
        return self._sign_end_entity(subject, public, _serial(self.chain_id, member_id), valid=valid)

    def issue_tls_server(self, name: str, public: Ed25519PublicKey | EllipticCurvePublicKey,
                         dns: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",),
                         serial: int | None = None) -> x509.Certificate:
        """A TLS server certificate (an MQTT broker's): serverAuth only, named by DNS and IP SANs.

        Not a member certificate: its subject has no role, so the genesis membership never
        accepts it as a signer. Its validity is the chain's, like the members'.
        """
        subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.chain_id),
                             x509.NameAttribute(NameOID.COMMON_NAME, name)])
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        return self._sign_end_entity(subject, public, serial if serial is not None else x509.random_serial_number(),
                                     x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                     x509.SubjectAlternativeName(sans))

    def _sign_end_entity(self, subject: x509.Name, public, serial: int, *extensions,
                         valid: tuple[datetime.datetime, datetime.datetime] = (NOT_BEFORE, NOT_AFTER)
                         ) -> x509.Certificate:
        """A certificate for signing only (not a CA), with ``extensions`` between its key usage and key ids."""
        ca_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.cert.subject).public_key(public)
            .serial_number(serial)
            .not_valid_before(valid[0]).not_valid_after(valid[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False), critical=True)
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return (
            builder
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(self.key, None)
        )


    def revocation_list(self, revoked: dict[int, datetime.datetime]) -> x509.CertificateRevocationList:
        """An X.509 CRL signed by this CA: certificate serial -> the date it is revoked from."""
        return revocation_list(self.cert, self.key, revoked)


def revocation_list(ca_cert: x509.Certificate, ca_key: Ed25519PrivateKey, revoked: dict[int, datetime.datetime],
                    issued: datetime.datetime = NOT_BEFORE, next_update: datetime.datetime = NOT_AFTER,
                    number: int | None = None, reasons: dict[int, str] | None = None) -> x509.CertificateRevocationList:
    """A CRL the CA (``ca_cert``, ``ca_key``) signs: serial -> revoked from (X.509 dates are
    whole seconds); with ``number`` its CRLNumber, with ``reasons`` serial -> a ReasonFlags name."""
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
               .last_update(issued).next_update(next_update))
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=False)
    for serial, when in sorted(revoked.items()):
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        reason = (reasons or {}).get(serial)
        if reason:
            entry = entry.add_extension(x509.CRLReason(x509.ReasonFlags[reason]), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(ca_key, None)


def subject_fields(cert: x509.Certificate) -> tuple[str, str, str]:
    """(common name, organisation, role) from a member certificate's subject."""

    def one(oid):
        attrs = cert.subject.get_attributes_for_oid(oid)
        return attrs[0].value if attrs else ""

    return one(NameOID.COMMON_NAME), one(NameOID.ORGANIZATION_NAME), one(NameOID.ORGANIZATIONAL_UNIT_NAME)
