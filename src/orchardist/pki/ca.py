"""The certificate authority: create the CA, issue device identities from CSRs, and the
server's own TLS certificate.

Issued certificates follow RFC 5280 profile choices that iOS and OpenSSL both accept:
random positive 128-bit serials (§4.1.2.2 allows up to 20 octets), SKI/AKI, critical
KeyUsage and BasicConstraints.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchardist.pki.csr import CheckedCsr, CsrError, IssuablePublicKey, check_csr

# CsrError and check_csr live in pki.csr; named here too for the callers that know the CA.
__all__ = [
    "BACKDATE",
    "CertificateAuthority",
    "CheckedCsr",
    "CsrError",
    "IssuablePublicKey",
    "check_csr",
    "fingerprint_sha256",
    "generate_ca",
    "random_serial",
]

# Certificates are back-dated so that a device whose clock runs a little slow still
# accepts them as valid at once.
BACKDATE = timedelta(minutes=5)


def random_serial() -> int:
    """A random, positive, non-zero 128-bit serial number."""
    return secrets.randbits(127) | (1 << 126)


def fingerprint_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def generate_ca(
    common_name: str, organization: str, *, key_size: int = 2048, validity_days: int = 3650
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A new self-signed RSA root that may sign end-entity certificates only (pathlen 0)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    now = datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(random_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        # keyEncipherment: SCEP requests are encrypted to the CA certificate (without an RA).
        .add_extension(_usage(signing=True, encipherment=True, certifies=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate with its key: signs device identities and TLS server certificates."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    def issue_client_certificate(
        self, csr: x509.CertificateSigningRequest, *, validity_days: int, now: datetime
    ) -> x509.Certificate:
        """Sign a device identity for this CSR: its subject, public key and SubjectAltName,
        with clientAuth only. Raises CsrError for a CSR that `check_csr` refuses."""
        return self.certify(check_csr(csr), validity_days=validity_days, now=now)

    def certify(
        self, request: CheckedCsr, *, validity_days: int, now: datetime
    ) -> x509.Certificate:
        """`issue_client_certificate` for a CSR already checked (one private-key operation)."""
        public_key = request.public_key
        builder = self._leaf_builder(request.subject, public_key, validity_days, now)
        is_rsa = isinstance(public_key, rsa.RSAPublicKey)
        builder = builder.add_extension(
            _usage(signing=True, encipherment=is_rsa, agreement=not is_rsa), critical=True
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        if request.san is not None:
            builder = builder.add_extension(request.san, critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue_server_certificate(
        self, hostname: str, *, validity_days: int = 397
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """A TLS server certificate for `hostname`, localhost and 127.0.0.1 (397 days: the
        longest lifetime Apple platforms accept for TLS server certificates)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
        names: list[x509.GeneralName] = []
        for entry in dict.fromkeys([hostname, "localhost", "127.0.0.1"]):
            names.append(_general_name(entry))
        cert = (
            self._leaf_builder(subject, key.public_key(), validity_days, datetime.now(UTC))
            .add_extension(_usage(signing=True, encipherment=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert, key

    def issue_registration_authority(
        self, common_name: str, *, validity_days: int = 730
    ) -> CertificateAuthority:
        """An RA for SCEP (RFC 8894 §2.2): clients encrypt requests to it and it signs the
        CertReps, while the CA key signs certificates only. It needs digitalSignature and
        keyEncipherment; it is not a CA."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                *self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME),
            ]
        )
        cert = (
            self._leaf_builder(subject, key.public_key(), validity_days, datetime.now(UTC))
            .add_extension(_usage(signing=True, encipherment=True), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return CertificateAuthority(cert, key)

    def _leaf_builder(
        self, subject: x509.Name, public_key: IssuablePublicKey, validity_days: int, now: datetime
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(random_serial())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + timedelta(days=validity_days), self._ca_not_after))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(_authority_key_id(self.certificate), critical=False)
        )

    @property
    def _ca_not_after(self) -> datetime:
        # A leaf must never outlive its issuer (RFC 5280 path validation would reject it).
        return self.certificate.not_valid_after_utc


@functools.lru_cache(maxsize=8)
def _authority_key_id(ca: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """The AKI a CA's leaves carry, from its SKI: read once per CA, not per certificate."""
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _usage(
    *, signing: bool, encipherment: bool, agreement: bool = False, certifies: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=encipherment,
        data_encipherment=False,
        key_agreement=agreement,
        key_cert_sign=certifies,
        crl_sign=certifies,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)
