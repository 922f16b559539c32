"""A stand-in for Apple's push certificate, for the local APNs peer: a CA that the peer
trusts for client certificates, and a push certificate it issued with the topic in the
subject UID as Apple's have. Useless against Apple's servers, which trust only Apple's CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

STAND_IN_TOPIC = "com.apple.mgmt.External.00000000-0000-4000-8000-00000000test"
STAND_IN_CA_NAME = "Orchardist stand-in Apple push CA (local APNs peer only)"


@dataclass(frozen=True)
class StandInIdentity:
    ca: x509.Certificate  # what the local peer trusts (its --client-ca)
    certificate: x509.Certificate  # the push certificate, topic in the subject UID
    key: rsa.RSAPrivateKey
    topic: str


def stand_in_identity(
    now: datetime,
    *,
    topic: str = STAND_IN_TOPIC,
    days: int = 365,
    ca_key: rsa.RSAPrivateKey | None = None,
    key: rsa.RSAPrivateKey | None = None,
) -> StandInIdentity:
    """A fresh CA and push certificate (keys made here unless given)."""
    ca_key = ca_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, STAND_IN_CA_NAME)])
    ca = (
        _builder(ca_name, ca_name, ca_key, now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, topic),
            x509.NameAttribute(NameOID.COMMON_NAME, f"APSP:{topic[-36:]}"),
        ]
    )
    certificate = _builder(subject, ca_name, key, now, days).sign(ca_key, hashes.SHA256())
    return StandInIdentity(ca, certificate, key, topic)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey, now: datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
    )
